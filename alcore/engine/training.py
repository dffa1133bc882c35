"""Fast retraining: one compiled model per architecture, reset between rounds.

The straightforward loop (build, compile, ``model.fit`` with an EarlyStopping
callback, ``model.predict``, every round) spends nearly all its time in per-call
overhead: a Keras epoch on a few hundred images costs ~100 ms of bookkeeping for
well under 1 ms of arithmetic. Here instead:

- each architecture is built and its optimizer created once (per
  :class:`TrainerCache`), and each round starts from stored weights and a stored
  optimizer state;
- a whole round of training (every epoch, every mini-batch, the validation loss,
  early stopping with best-weight restore) is ONE call of an XLA-compiled graph
  function (a few calls of about a quarter second each where the round may be
  stopped part way, :mod:`alcore.engine.cancel`: the graph takes the state the
  last call left and makes the same steps, so the weights are bit for bit the
  same however the round is cut). Arrays are padded to a fixed capacity (a power of two that the run's
  label budget fits in) and masked, so the graph does not retrace or recompile as
  the labeled set grows;
- epoch shuffles are drawn on the host from the round's seed and passed in, so
  training is reproducible and the graph contains no sort;
- the pool is scored in large batches by one graph function per input shape.

Semantics match ``fit(..., validation_data=..., callbacks=[EarlyStopping(
monitor="val_loss", patience=p, restore_best_weights=True)])`` with shuffling:
mini-batch mean sparse categorical cross-entropy (probabilities clipped at 1e-7,
as Keras does), plus ``l2 * sum(kernel**2)``.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import numpy as np

from alcore._tf import keras, tf
from alcore.engine import cancel
from alcore.engine.models import ModelSpec, build_model, embedding_output

PREDICT_CHUNK = 4096
FIRST_CHUNK = 16  # steps of a round's first compiled call when it may be stopped (it may also compile)
_EPS = 1e-7


@dataclass(frozen=True)
class FitReport:
    epochs: int
    best_val_loss: Optional[float]
    train_loss: float
    best_epoch: int  # epochs trained when validation loss was lowest (= epochs without validation)


def schedule(n: int, train_batch_size: int, max_epochs: int, min_steps: int = 0,
             max_steps: Optional[int] = None) -> tuple[int, int]:
    """``(epochs, steps)`` of a round on ``n`` labels without early stopping.

    An epoch is ``ceil(n / train_batch_size)`` steps. The round makes ``max_epochs`` epochs'
    worth of steps, raised to ``min_steps`` and lowered to ``max_steps`` (the last epoch
    may then stop part way): enough updates at 10 labels, where an epoch is one step, and
    no explosion at thousands, where an epoch is hundreds. Deep active-learning code does
    the same with a minimum number of iterations per round (e.g. Lüth et al. 2023) or a
    fixed number of steps."""
    if n < 1:
        raise ValueError(f"cannot schedule training on {n} labels")
    per_epoch = -(-n // train_batch_size)
    steps = max(max_epochs * per_epoch, min_steps)
    if max_steps is not None:
        steps = min(steps, max_steps)
    return -(-steps // per_epoch), steps


def _capacity(n: int, floor: int, multiple: int) -> int:
    cap = 1 << max(int(np.ceil(np.log2(max(n, floor, 1)))), 0)
    return int(np.ceil(cap / multiple) * multiple)


def _chunk_starts(n: int):
    """0, PREDICT_CHUNK, 2 PREDICT_CHUNK, ... below ``n``, with a cancel checkpoint before each chunk."""
    for i in range(0, n, PREDICT_CHUNK):
        cancel.checkpoint()
        yield i


def _pad(a: np.ndarray, cap: int) -> np.ndarray:
    if len(a) == cap:
        return a
    out = np.zeros((cap,) + a.shape[1:], dtype=a.dtype)
    out[: len(a)] = a
    return out


class Trainer:
    """One built model + optimizer + compiled functions for one architecture.

    Not shared between threads: an :class:`Experiment` holds the lock for the
    duration of a round.
    """

    def __init__(self, spec: ModelSpec, optimizer: str = "adam", momentum: float = 0.9,
                 train_batch_size: int = 32, jit: Optional[bool] = None):
        self.spec = spec
        self.batch = int(train_batch_size)
        self.lock = threading.Lock()
        self.model = build_model(spec, seed=0)
        if optimizer == "adam":
            self.optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        elif optimizer == "sgd":
            self.optimizer = keras.optimizers.SGD(learning_rate=1e-3, momentum=momentum)
        else:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose adam or sgd")
        self.optimizer.build(self.model.trainable_variables)
        self._trainable = list(self.model.trainable_variables)
        self._kernels = [v for v in self._trainable if v.path.endswith("kernel")]
        self._best = [tf.Variable(v, trainable=False) for v in self._trainable]
        self._opt_initial = [v.numpy() for v in self.optimizer.variables]
        self._initial: OrderedDict[int, list[np.ndarray]] = OrderedDict()
        if jit is None:
            # XLA fuses the many small ops of dense models, but its CPU convolutions are
            # about 17x slower than TensorFlow's own kernels (cnn, 100 MNIST labels, 20
            # epochs: 38.7 s against 2.3 s, bench_retraining.py --parts 4), so convolutional
            # models run as plain graphs. So do models that augment: XLA has no kernel for the
            # image transform of Keras's RandomTranslation / RandomRotation / RandomZoom
            # (ImageProjectiveTransformV3).
            jit = spec.model != "cnn" and not spec.augments
        self.jit = jit
        self._train_fn = tf.function(self._train_graph, jit_compile=jit)
        signature = [tf.TensorSpec((None,) + spec.input_shape, tf.float32)]
        self._predict_fn = tf.function(lambda x: self.model(x, training=False),
                                       input_signature=signature)
        self._mc_trunk_fn = self._mc_head_fn = None
        if spec.has_dropout:
            # Layers before the first Dropout give the same output in every stochastic pass:
            # run them once per chunk and only the rest `passes` times (3.5-4x faster for
            # the cnn, whose convolutions come first). The head reuses the model's layers,
            # so weights and the seeded dropout state are shared.
            layers = [layer for layer in self.model.layers if not isinstance(layer, keras.layers.InputLayer)]
            first = next(i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.Dropout))
            trunk = keras.Model(self.model.inputs, layers[first - 1].output) if first else None
            head_in = keras.Input(tuple(layers[first - 1].output.shape[1:]) if first else spec.input_shape)
            h = head_in
            for layer in layers[first:]:
                h = layer(h)
            head = keras.Model(head_in, h)
            self._mc_trunk_fn = (tf.function(lambda x: trunk(x, training=False), input_signature=signature)
                                 if trunk is not None else tf.identity)
            self._mc_head_fn = tf.function(lambda f: head(f, training=True),
                                           input_signature=[tf.TensorSpec((None,) + tuple(head_in.shape[1:]),
                                                                          tf.float32)])
        embed_model = keras.Model(self.model.inputs, embedding_output(self.model))
        self._embed_fn = tf.function(lambda x: keras.ops.reshape(embed_model(x, training=False),
                                                                 (tf.shape(x)[0], -1)),
                                     input_signature=signature)

    # -------------------------------------------------------------- state handling
    def initial_weights(self, seed: int) -> list[np.ndarray]:
        """All model variables (weights and dropout seed state) for a fresh model
        drawn from ``seed``; cached, so every round and every strategy with this seed
        starts from the same weights."""
        if seed not in self._initial:
            fresh = build_model(self.spec, seed=seed)
            self._initial[seed] = [np.array(v.numpy()) for v in fresh.variables]
            del fresh
            while len(self._initial) > 16:
                self._initial.popitem(last=False)
        self._initial.move_to_end(seed)
        return self._initial[seed]

    def get_weights(self) -> list[np.ndarray]:
        return [np.array(v.numpy()) for v in self.model.variables]

    def set_weights(self, values: list[np.ndarray]) -> None:
        variables = self.model.variables
        if len(values) != len(variables):
            raise ValueError(f"weight list has {len(values)} arrays, model has {len(variables)} variables")
        for v, w in zip(variables, values):
            v.assign(w)

    def reset_optimizer(self, learning_rate: float) -> None:
        for v, w in zip(self.optimizer.variables, self._opt_initial):
            v.assign(w)
        self.optimizer.learning_rate.assign(learning_rate)

    # -------------------------------------------------------------------- training
    def _masked_ce(self, probs, labels, mask):
        p = tf.clip_by_value(tf.gather(probs, labels, batch_dims=1), _EPS, 1.0)
        return tf.reduce_sum(-tf.math.log(p) * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)

    def _train_graph(self, x, y, n, xv, yv, nv, perms, max_epochs, patience, l2, step_limit, weight_decay,
                     epoch, s, done, wait, best_epoch, best_loss, total, train_loss, stop_at):
        """The round's training from the state (epoch, step in the epoch, steps done, ...) a
        previous call left, until it ends or ``stop_at`` steps are done in all: a round is one
        call or several (see :meth:`fit`), with the same arithmetic step for step."""
        B = self.batch
        steps = (n + B - 1) // B
        vmask = tf.cast(tf.range(tf.shape(yv)[0]) < nv, tf.float32)
        while epoch < max_epochs and wait < patience and done < step_limit and done < stop_at:
            perm = perms[epoch]
            while s < steps and done < step_limit and done < stop_at:
                idx = tf.slice(perm, [s * B], [B])
                mask = tf.cast(s * B + tf.range(B) < n, tf.float32)
                xb = tf.gather(x, idx)
                yb = tf.gather(y, idx)
                with tf.GradientTape() as tape:
                    loss = self._masked_ce(self.model(xb, training=True), yb, mask)
                    if self._kernels:
                        loss += l2 * tf.add_n([tf.reduce_sum(tf.square(k)) for k in self._kernels])
                grads = tape.gradient(loss, self._trainable)
                self.optimizer.apply(grads, self._trainable)
                if self._kernels:
                    # decoupled weight decay (AdamW / SGDW): k <- k - lr * wd * k
                    shrink = tf.cast(self.optimizer.learning_rate, tf.float32) * weight_decay
                    for k in self._kernels:
                        k.assign_sub(shrink * k)
                total += loss
                s += 1
                done += 1
            if s >= steps or done >= step_limit:  # the epoch ended (the round's last may stop part way)
                train_loss = total / tf.cast(tf.maximum(s, 1), tf.float32)
                epoch += 1
                s = 0
                total = tf.constant(0.0)
                if nv > 0:
                    val_loss = self._masked_ce(self.model(xv, training=False), yv, vmask)
                    if val_loss < best_loss:
                        best_loss = val_loss
                        best_epoch = epoch
                        wait = 0
                        for b, v in zip(self._best, self._trainable):
                            b.assign(v)
                    else:
                        wait += 1
        return epoch, s, done, wait, best_epoch, best_loss, total, train_loss

    def fit(self, x: np.ndarray, y: np.ndarray, x_val: Optional[np.ndarray] = None,
            y_val: Optional[np.ndarray] = None, *, max_epochs: int, patience: int,
            l2: float = 0.0, rng: np.random.Generator, capacity: int = 0,
            val_capacity: int = 0, epoch_capacity: int = 0, max_steps: Optional[int] = None,
            weight_decay: float = 0.0) -> FitReport:
        """Train on (x, y) from the current weights; early stopping on (x_val, y_val)
        when given (and not empty), otherwise exactly ``max_epochs`` epochs; either way
        at most ``max_steps`` gradient steps in all (the last epoch may stop part way).

        ``capacity`` / ``val_capacity`` / ``epoch_capacity`` are the largest sizes
        the caller expects in this run: arrays are padded (to a power of two for
        the labeled sets) so the compiled function is reused for every round."""
        n = len(x)
        if n == 0:
            raise ValueError("cannot train on an empty labeled set")
        cap = _capacity(max(n, capacity), 32, self.batch)
        has_val = x_val is not None and len(x_val) > 0
        nv = len(x_val) if has_val else 0
        vcap = _capacity(max(nv, val_capacity), 8, 1)
        perms = np.zeros((max(max_epochs, epoch_capacity), cap), dtype=np.int32)
        perms[:max_epochs, :n] = rng.permuted(np.broadcast_to(np.arange(n, dtype=np.int32), (max_epochs, n)), axis=1)
        if has_val:
            xv, yv = _pad(np.asarray(x_val, np.float32), vcap), _pad(np.asarray(y_val, np.int32), vcap)
        else:
            xv = np.zeros((vcap,) + self.spec.input_shape, np.float32)
            yv = np.zeros(vcap, np.int32)
        args = (tf.constant(_pad(np.asarray(x, np.float32), cap)), tf.constant(_pad(np.asarray(y, np.int32), cap)),
                tf.constant(n, tf.int32), tf.constant(xv), tf.constant(yv), tf.constant(nv, tf.int32),
                tf.constant(perms), tf.constant(max_epochs, tf.int32),
                tf.constant(patience if has_val else max_epochs + 1, tf.int32), tf.constant(l2, tf.float32),
                tf.constant(np.iinfo(np.int32).max if max_steps is None else max_steps, tf.int32),
                tf.constant(weight_decay, tf.float32))
        state = self._run_steps(args, max_epochs * -(-n // self.batch) if max_steps is None
                                else min(max_steps, max_epochs * -(-n // self.batch)))
        epochs, _, _, _, best_epoch, best, _, train_loss = state
        if has_val:
            for b, v in zip(self._best, self._trainable):
                v.assign(b)
        else:
            best_epoch = epochs
        return FitReport(int(epochs), float(best) if has_val else None, float(train_loss), int(best_epoch))

    def _run_steps(self, args: tuple, most_steps: int) -> tuple:
        """Call the compiled training until the round ends (``most_steps`` bounds it: fewer with
        early stopping), a :func:`alcore.engine.cancel.checkpoint` between calls. Each call makes
        about CHECK_SECONDS of steps, measured from the calls before; without a check installed,
        one call makes them all (nothing would ask between calls)."""
        for b, v in zip(self._best, self._trainable):
            b.assign(v)
        zero, inf = tf.constant(0), tf.constant(np.inf, tf.float32)
        state = (zero, zero, zero, zero, zero, inf, tf.constant(0.0), tf.constant(0.0))
        chunk, done = (FIRST_CHUNK if cancel.active() else most_steps), 0
        while True:
            cancel.checkpoint()
            t0 = time.perf_counter()
            state = self._train_fn(*args, *state, tf.constant(min(done + chunk, most_steps), tf.int32))
            made, done = int(state[2]) - done, int(state[2])
            epoch, wait = int(state[0]), int(state[3])
            if done >= most_steps or epoch >= int(args[7]) or wait >= int(args[8]) or made == 0:
                return state
            seconds = time.perf_counter() - t0
            chunk = max(1, min(4 * chunk, int(made * cancel.CHECK_SECONDS / max(seconds, 1e-6))))

    # ------------------------------------------------------------------ prediction
    def _chunked(self, fn, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            return np.zeros((0, self.spec.n_classes), np.float32)
        out = [fn(x[i:i + PREDICT_CHUNK]).numpy() for i in _chunk_starts(len(x))]
        return np.concatenate(out)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, (n, classes), scored in chunks of PREDICT_CHUNK."""
        return self._chunked(self._predict_fn, x)

    def _mc_passes(self, x: np.ndarray, passes: int):
        """Each chunk's ``passes`` stochastic forward passes with dropout active, as (start,
        pass, probabilities): the layers before the first Dropout run once per chunk."""
        if self._mc_head_fn is None:
            raise ValueError(f"model {self.spec.model!r} has no dropout, so stochastic passes would all "
                             f"agree: choose mlp or cnn with dropout > 0")
        x = np.asarray(x, dtype=np.float32)
        for i in _chunk_starts(len(x)):
            features = self._mc_trunk_fn(x[i:i + PREDICT_CHUNK])
            for t in range(passes):
                yield i, t, self._mc_head_fn(features).numpy()

    def predict_proba_mc(self, x: np.ndarray, passes: int) -> np.ndarray:
        """``passes`` stochastic forward passes with dropout active: (passes, n, classes)."""
        out = np.empty((passes, len(x), self.spec.n_classes), dtype=np.float32)
        for i, t, p in self._mc_passes(x, passes):
            out[t, i:i + len(p)] = p
        return out

    def predict_proba_mc_mean(self, x: np.ndarray, passes: int) -> np.ndarray:
        """Mean of ``passes`` stochastic forward passes with dropout active, (n, classes):
        the MC-dropout predictive distribution, summed chunk by chunk so memory does not
        grow with the passes. The dropout masks' random state is put back afterwards, so
        the passes a strategy draws next are the ones it would draw without this call."""
        states = [v for v in self.model.non_trainable_variables if "seed_generator" in v.path]
        saved = [v.numpy() for v in states]
        out = np.zeros((len(x), self.spec.n_classes), dtype=np.float32)
        try:
            for i, _, p in self._mc_passes(x, passes):
                out[i:i + len(p)] += p
        finally:
            for v, value in zip(states, saved):
                v.assign(value)
        return out / passes

    def embed(self, x: np.ndarray) -> np.ndarray:
        """Penultimate-layer features (the inputs, flattened, for softmax): (n, d)."""
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            return np.zeros((0, 0), np.float32)
        return np.concatenate([self._embed_fn(x[i:i + PREDICT_CHUNK]).numpy()
                               for i in _chunk_starts(len(x))])

    def count_params(self) -> int:
        return int(self.model.count_params())


class TrainerPool:
    """Compiled trainers handed from one owner to the next: a server's browser sessions each
    check one out per architecture (through their :class:`TrainerCache`) and hand it back when
    they end, and the next session reuses it instead of building and compiling its own. Every
    model built costs its compilation, and about 23 MB that TensorFlow keeps after the model is
    gone (most of it XLA's compiled code; eight races building their own model: +162 MB, reusing
    one: +0), so a server whose sessions each built theirs grew with every visitor.

    A trainer carries nothing from one use to the next that a result depends on: every use (a
    round, a retraining) holds its ``lock`` and starts by setting the weights and the optimizer
    state. Idle trainers are kept up to ``max_mb`` of weights and optimizer state (estimated at
    16 bytes a parameter), least recently handed back dropped first: a large model is not kept
    idle, its memory is returned instead."""

    def __init__(self, max_mb: float = 64, jit: Optional[bool] = None):
        self.max_bytes = max_mb * 2**20
        self.jit = jit
        self._idle: list[tuple[tuple, Trainer]] = []  # least recently handed back first
        self._lock = threading.Lock()

    @staticmethod
    def footprint(trainer: Trainer) -> int:
        """Bytes of an idle trainer, roughly: weights, Adam's two moments and the best-weight copy."""
        return 16 * trainer.count_params()

    def checkout(self, key: tuple, spec: ModelSpec, optimizer: str, momentum: float, train_batch_size: int) -> Trainer:
        """An idle trainer of ``key`` (its compiled functions ready), or a new one."""
        with self._lock:
            for i in range(len(self._idle) - 1, -1, -1):
                if self._idle[i][0] == key:
                    return self._idle.pop(i)[1]
        return Trainer(spec, optimizer, momentum, train_batch_size, jit=self.jit)

    def checkin(self, key: tuple, trainer: Trainer) -> None:
        """Hand ``trainer`` back (its owner no longer uses it); dropped where it does not fit."""
        if self.footprint(trainer) > self.max_bytes:
            return
        if trainer.lock.acquire(blocking=False):  # (a former owner's round in progress keeps them)
            trainer._initial.clear()  # seed weights: rebuilt on demand, the same for the same seed
            trainer.lock.release()
        with self._lock:
            self._idle.append((key, trainer))
            while self._idle and sum(self.footprint(t) for _, t in self._idle) > self.max_bytes:
                self._idle.pop(0)

    def __len__(self) -> int:
        return len(self._idle)


class TrainerCache:
    """Trainers by (architecture, optimizer, batch size), least recently used first out.

    Own one per process for the CLI, one per browser session in the dashboard:
    models are mutated by training, so a cache is never shared between sessions.
    With a ``pool``, trainers come from it and go back to it when evicted or cleared.
    """

    def __init__(self, max_entries: int = 4, jit: Optional[bool] = None, pool: Optional[TrainerPool] = None):
        self.max_entries = max_entries
        self.jit = jit
        self.pool = pool
        self._trainers: OrderedDict[tuple, Trainer] = OrderedDict()
        self._lock = threading.Lock()  # clear() may come from another thread (a session that ended)

    def get(self, spec: ModelSpec, optimizer: str = "adam", momentum: float = 0.9,
            train_batch_size: int = 32) -> Trainer:
        key = (spec, optimizer, float(momentum) if optimizer == "sgd" else None, int(train_batch_size))
        evicted = []
        with self._lock:
            trainer = self._trainers.get(key)
            if trainer is None:
                trainer = (self.pool.checkout(key, spec, optimizer, momentum, train_batch_size) if self.pool
                           else Trainer(spec, optimizer, momentum, train_batch_size, jit=self.jit))
                self._trainers[key] = trainer
                while len(self._trainers) > self.max_entries:
                    evicted.append(self._trainers.popitem(last=False))
            self._trainers.move_to_end(key)
        self._hand_back(evicted)
        return trainer

    def clear(self) -> None:
        """Drop every trainer (models and compiled functions; freed once nothing else holds them),
        or hand them back to the pool."""
        with self._lock:
            items = list(self._trainers.items())
            self._trainers.clear()
        self._hand_back(items)

    def _hand_back(self, items: list) -> None:
        if self.pool is not None:
            for key, trainer in items:
                self.pool.checkin(key, trainer)

    def __len__(self) -> int:
        return len(self._trainers)
