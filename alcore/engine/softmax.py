"""The ``softmax`` model fitted like the convex problem it is.

Multinomial logistic regression with an L2 penalty on the weights (not the biases),
minimised to convergence every round by full-batch L-BFGS (scikit-learn's
``LogisticRegression``, the learner behind most classic active-learning papers):

    minimise over W, b   sum_i -log softmax(W x_i + b)[y_i]  +  ||W||^2 / (2 C)

The optimum is unique, so a round's model depends only on its labels and ``C``: no
validation split, no epochs, no learning rate, no initial weights, and no round-to-round
noise from stopping early on a handful of images. Every fit starts from zero weights, so
a continued run and a retrained round reproduce the original model exactly.

``C`` is the prior's strength in the form that scales with the data: the penalty stays
fixed while the data term grows with the labels, so the model is smooth at 10 labels
and close to unpenalised at thousands. Its default was chosen on development splits of
the MNIST and Fashion-MNIST *training* sets (``bench/tune_softmax.py``), never on a test
set. With ``penalty_cv`` each round picks ``C`` from ``C x CV_FACTORS`` by k-fold
cross-validation of the log-loss on its own labels.

Classes without a label yet get probability 0 (as scikit-learn's model, which only knows
the classes it has seen); a labeled set of one class predicts that class with certainty.
"""
from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np

from alcore.engine import cancel

CV_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)
CV_FOLDS = 5
CV_MIN_LABELS = 20  # below this, k-fold estimates on 4 or fewer images per fold are noise
TOL = 1e-4  # scikit-learn's own convergence tolerance on the largest gradient component: the objective within 0.1% of its optimum (tests/test_softmax.py)
MAX_ITER = 10_000
_EPS = 1e-7


@dataclass(frozen=True)
class ConvexFitReport:
    epochs: int  # L-BFGS iterations: each is at least one full pass over the labels
    penalty_c: float  # the C fitted with (chosen by cross-validation under penalty_cv)
    train_loss: float  # mean cross-entropy on the training labels at the optimum
    converged: bool
    best_val_loss: Optional[float] = None  # cross-validated log-loss of the chosen C
    best_epoch: int = 0


def _flat(x: np.ndarray) -> np.ndarray:
    """Images as rows of float32 (a view of the dataset's arrays: no copy per round; scikit-learn
    fits float32 in float32, 1.5-2x faster than float64 at the same optimum within the tolerance)."""
    return np.asarray(x, dtype=np.float32).reshape(len(x), -1)


class SoftmaxLearner:
    """Multinomial logistic regression over all ``n_classes``, refitted to convergence.

    The same surface as :class:`alcore.engine.training.Trainer` where the loop needs it
    (``lock``, ``predict_proba``, ``embed``, ``count_params``, ``get_weights`` / ``set_weights``), with :meth:`fit` taking
    the labels alone. Holds one round's fitted weights."""

    def __init__(self, n_features: int, n_classes: int, penalty_c: float,
                 penalty_cv: bool = False, tol: float = TOL, max_iter: int = MAX_ITER):
        if not penalty_c > 0:
            raise ValueError(f"penalty_c must be > 0, got {penalty_c}")
        self.n_features = int(n_features)
        self.n_classes = int(n_classes)
        self.penalty_c = float(penalty_c)
        self.penalty_cv = bool(penalty_cv)
        self.tol = tol
        self.max_iter = max_iter
        self.lock = threading.Lock()
        from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

        self._blas = ThreadpoolController()  # found once: each look-up scans the loaded libraries (~7 ms)
        self.coef_ = np.zeros((self.n_features, self.n_classes), np.float32)
        self.intercept_ = np.zeros(self.n_classes, np.float32)

    # ------------------------------------------------------------------ fitting
    def _solve(self, x: np.ndarray, y: np.ndarray, c: float, start=None):
        """(coef (d, k), intercept (k,), iterations, converged) at the optimum for ``c``."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        coef = np.zeros((x.shape[1], self.n_classes), np.float32)
        intercept = np.full(self.n_classes, -np.inf, np.float32)
        present = np.unique(y)
        if len(present) == 1:  # the limit of the fit: that class, with certainty
            intercept[present[0]] = 0.0
            return coef, intercept, 0, True
        binary = len(present) == 2
        # scikit-learn fits two classes as one logistic row w = w1 - w0 penalised by ||w||^2 / (2C);
        # the multinomial optimum has w0 = -w1 = -w/2, whose penalty is ||w||^2 / (4C): the same
        # model is the binary fit with 2C.
        model = LogisticRegression(C=2 * c if binary else c, tol=self.tol, max_iter=self.max_iter,
                                   warm_start=start is not None)
        if start is not None:  # warm start (cross-validation's C path): the same optimum, sooner
            model.coef_, model.intercept_ = start[0][:, present].T.copy(), start[1][present].copy()
            if binary:
                model.coef_ = (model.coef_[1] - model.coef_[0])[None, :]
                model.intercept_ = np.array([model.intercept_[1] - model.intercept_[0]])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(x, y)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        w, b = model.coef_, model.intercept_
        if binary:  # p(c1) = sigmoid(w x + b) = softmax over (-(w x + b) / 2, (w x + b) / 2)
            w = np.vstack([-w[0] / 2, w[0] / 2])
            b = np.array([-b[0] / 2, b[0] / 2])
        coef[:, present] = w.T
        intercept[present] = b
        return coef, intercept, int(np.max(model.n_iter_)), converged

    def _choose_c(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[float, Optional[float]]:
        """C from C x CV_FACTORS with the lowest k-fold log-loss (ties: the one nearest C)."""
        n = len(y)
        if not self.penalty_cv or n < CV_MIN_LABELS or len(np.unique(y)) < 2:
            return self.penalty_c, None
        folds = np.array_split(rng.permutation(n), CV_FOLDS)
        grid = [self.penalty_c * f for f in sorted(CV_FACTORS)]
        losses = np.zeros(len(grid))
        for held in folds:
            train = np.setdiff1d(np.arange(n), held)
            start = None
            for j, c in enumerate(grid):  # strongest penalty first: each warm-starts the next
                cancel.checkpoint()  # between fits: a round can be stopped part way (alcore.engine.cancel)
                coef, intercept, _, _ = self._solve(x[train], y[train], c, start)
                start = (coef, np.where(np.isfinite(intercept), intercept, 0.0))
                p = self._probs(x[held], coef, intercept)[np.arange(len(held)), y[held]]
                losses[j] += -np.log(np.clip(p, _EPS, 1.0)).sum()
        losses /= n
        best = min(range(len(grid)), key=lambda j: (round(losses[j], 9), abs(np.log(grid[j] / self.penalty_c))))
        return grid[best], float(losses[best])

    def fit(self, x: np.ndarray, y: np.ndarray, rng: Optional[np.random.Generator] = None) -> ConvexFitReport:
        """Fit to convergence on (x, y) from zero weights. ``rng`` draws the folds of
        ``penalty_cv`` (deterministic for a given generator)."""
        cancel.checkpoint()
        y = np.asarray(y, dtype=np.int64)
        if len(y) == 0:
            raise ValueError("cannot train on an empty labeled set")
        if y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(f"labels must be classes 0..{self.n_classes - 1}")
        x = _flat(x)
        with self._single_thread():
            c, cv_loss = self._choose_c(x, y, rng if rng is not None else np.random.default_rng(0))
            coef, intercept, iterations, converged = self._solve(x, y, c)
        self.coef_, self.intercept_ = coef, intercept
        p = self.predict_proba(x)[np.arange(len(y)), y]
        loss = float(-np.log(np.clip(p, _EPS, 1.0)).mean())
        return ConvexFitReport(epochs=iterations, penalty_c=c, train_loss=loss, converged=converged,
                               best_val_loss=cv_loss, best_epoch=iterations)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the fitted weights [coef (features, classes), intercept (classes,)], as the
        Keras trainer's: a model set aside while another is fitted, then put back (set_weights)."""
        return [self.coef_.copy(), self.intercept_.copy()]

    def set_weights(self, values: list[np.ndarray]) -> None:
        coef, intercept = values
        if np.shape(coef) != self.coef_.shape or np.shape(intercept) != self.intercept_.shape:
            raise ValueError(f"weights of shapes {np.shape(coef)} and {np.shape(intercept)} do not fit a model "
                             f"of {self.n_features} features and {self.n_classes} classes")
        self.coef_, self.intercept_ = np.array(coef, np.float32), np.array(intercept, np.float32)

    def objective(self, x: np.ndarray, y: np.ndarray, c: Optional[float] = None) -> float:
        """The minimised objective at the current weights: summed cross-entropy + ||W||^2/(2C)."""
        c = self.penalty_c if c is None else c
        p = self.predict_proba(x)[np.arange(len(y)), np.asarray(y)]
        p = np.clip(p.astype(np.float64), 1e-300, 1.0)
        return float(-np.log(p).sum() + (self.coef_.astype(np.float64) ** 2).sum() / (2 * c))

    def _single_thread(self):
        """One BLAS thread for every product of this model: the matrices are small, and OpenBLAS'
        threads, woken by one multi-threaded product, kept spinning through the next single-threaded
        fit (the whole loop ran 2x slower); left free on two busy cores, a fit took 40x as long."""
        return self._blas.limit(limits=1, user_api="blas")

    # --------------------------------------------------------------- prediction
    @staticmethod
    def _probs(x: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
        z = x @ coef + intercept  # absent classes: intercept -inf, probability 0
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, (n, classes), float32."""
        if len(x) == 0:
            return np.zeros((0, self.n_classes), np.float32)
        with self._single_thread():
            return self._probs(_flat(x), self.coef_, self.intercept_)

    def embed(self, x: np.ndarray) -> np.ndarray:
        """The model's inputs, flattened: a linear model has no hidden layer."""
        return np.asarray(x, dtype=np.float32).reshape(len(x), -1)

    def count_params(self) -> int:
        return self.n_features * self.n_classes + self.n_classes
