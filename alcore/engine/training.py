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
  function. Arrays are padded to a fixed capacity (a power of two that the run's
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
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import numpy as np

from alcore._tf import keras, tf
from alcore.engine.models import ModelSpec, build_model, embedding_output

PREDICT_CHUNK = 4096
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

    def _train_graph(self, x, y, n, xv, yv, nv, perms, max_epochs, patience, l2, step_limit, weight_decay):
        B = self.batch
        steps = (n + B - 1) // B
        vmask = tf.cast(tf.range(tf.shape(yv)[0]) < nv, tf.float32)
        best_loss = tf.constant(np.inf, tf.float32)
        wait = tf.constant(0)
        epoch = tf.constant(0)
        best_epoch = tf.constant(0)
        train_loss = tf.constant(0.0)
        done = tf.constant(0)  # steps made so far this round
        for b, v in zip(self._best, self._trainable):
            b.assign(v)
        while epoch < max_epochs and wait < patience and done < step_limit:
            perm = perms[epoch]
            s = tf.constant(0)
            total = tf.constant(0.0)
            while s < steps and done < step_limit:
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
            train_loss = total / tf.cast(tf.maximum(s, 1), tf.float32)
            epoch += 1
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
        if nv > 0:
            for b, v in zip(self._best, self._trainable):
                v.assign(b)
        else:
            best_epoch = epoch
        return epoch, best_loss, train_loss, best_epoch

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
        epochs, best, train_loss, best_epoch = self._train_fn(
            _pad(np.asarray(x, np.float32), cap), _pad(np.asarray(y, np.int32), cap), tf.constant(n, tf.int32),
            xv, yv, tf.constant(nv, tf.int32), perms, tf.constant(max_epochs, tf.int32),
            tf.constant(patience if has_val else max_epochs + 1, tf.int32), tf.constant(l2, tf.float32),
            tf.constant(np.iinfo(np.int32).max if max_steps is None else max_steps, tf.int32),
            tf.constant(weight_decay, tf.float32))
        return FitReport(int(epochs), float(best) if has_val else None, float(train_loss), int(best_epoch))

    # ------------------------------------------------------------------ prediction
    def _chunked(self, fn, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            return np.zeros((0, self.spec.n_classes), np.float32)
        out = [fn(x[i:i + PREDICT_CHUNK]).numpy() for i in range(0, len(x), PREDICT_CHUNK)]
        return np.concatenate(out)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, (n, classes), scored in chunks of PREDICT_CHUNK."""
        return self._chunked(self._predict_fn, x)

    def predict_proba_mc(self, x: np.ndarray, passes: int) -> np.ndarray:
        """``passes`` stochastic forward passes with dropout active: (passes, n, classes)."""
        if self._mc_head_fn is None:
            raise ValueError(f"model {self.spec.model!r} has no dropout, so stochastic passes would all "
                             f"agree: choose mlp or cnn with dropout > 0")
        x = np.asarray(x, dtype=np.float32)
        out = np.empty((passes, len(x), self.spec.n_classes), dtype=np.float32)
        for i in range(0, len(x), PREDICT_CHUNK):
            features = self._mc_trunk_fn(x[i:i + PREDICT_CHUNK])
            for t in range(passes):
                out[t, i:i + PREDICT_CHUNK] = self._mc_head_fn(features).numpy()
        return out

    def predict_proba_mc_mean(self, x: np.ndarray, passes: int) -> np.ndarray:
        """Mean of ``passes`` stochastic forward passes with dropout active, (n, classes):
        the MC-dropout predictive distribution, summed chunk by chunk so memory does not
        grow with the passes. The dropout masks' random state is put back afterwards, so
        the passes a strategy draws next are the ones it would draw without this call."""
        if self._mc_head_fn is None:
            raise ValueError(f"model {self.spec.model!r} has no dropout, so stochastic passes would all "
                             f"agree: choose mlp or cnn with dropout > 0")
        x = np.asarray(x, dtype=np.float32)
        states = [v for v in self.model.non_trainable_variables if "seed_generator" in v.path]
        saved = [v.numpy() for v in states]
        out = np.zeros((len(x), self.spec.n_classes), dtype=np.float32)
        try:
            for i in range(0, len(x), PREDICT_CHUNK):
                features = self._mc_trunk_fn(x[i:i + PREDICT_CHUNK])
                for _ in range(passes):
                    out[i:i + PREDICT_CHUNK] += self._mc_head_fn(features).numpy()
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
                               for i in range(0, len(x), PREDICT_CHUNK)])

    def count_params(self) -> int:
        return int(self.model.count_params())


class TrainerCache:
    """Trainers by (architecture, optimizer, batch size), least recently used first out.

    Own one per process for the CLI, one per browser session in the dashboard:
    models are mutated by training, so a cache is never shared between sessions.
    """

    def __init__(self, max_entries: int = 4, jit: Optional[bool] = None):
        self.max_entries = max_entries
        self.jit = jit
        self._trainers: OrderedDict[tuple, Trainer] = OrderedDict()

    def get(self, spec: ModelSpec, optimizer: str = "adam", momentum: float = 0.9,
            train_batch_size: int = 32) -> Trainer:
        key = (spec, optimizer, float(momentum) if optimizer == "sgd" else None, int(train_batch_size))
        trainer = self._trainers.get(key)
        if trainer is None:
            trainer = Trainer(spec, optimizer, momentum, train_batch_size, jit=self.jit)
            self._trainers[key] = trainer
            while len(self._trainers) > self.max_entries:
                self._trainers.popitem(last=False)
        self._trainers.move_to_end(key)
        return trainer

    def __len__(self) -> int:
        return len(self._trainers)
