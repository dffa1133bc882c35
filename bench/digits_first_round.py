"""Digits after the 10 random initial labels: how far any classifier gets (seeds 0-4).

The default run's first round (softmax, 10 random initial labels) against scikit-learn's
LogisticRegression at C = 1 (the same model) and C = 100, 1-nearest neighbour and an RBF
SVM on the same labels, with the classes the labels cover and the ceiling they set (the
share of test images whose class has a label).

    python bench/digits_first_round.py
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

from alcore import Experiment, ExperimentConfig


def main() -> None:
    rows: dict[str, list[float]] = {}
    for seed in range(5):
        exp = Experiment(ExperimentConfig(dataset="digits", seed=seed, rounds=0))
        first = exp.step()
        ds, idx = exp.dataset, exp.initial_indices
        x = ds.x_pool.reshape(len(ds.x_pool), -1)
        x_test = ds.x_test.reshape(len(ds.x_test), -1)
        y = ds.y_pool[idx]
        out = {"alcore softmax (C = 1)": first.test_accuracy, "classes covered": len(set(y)),
               "ceiling: test share of covered classes": float(np.isin(ds.y_test, y).mean())}
        for name, clf in [("LogisticRegression C = 1", LogisticRegression(C=1, max_iter=10_000)),
                          ("LogisticRegression C = 100", LogisticRegression(C=100, max_iter=10_000)),
                          ("1-nearest neighbour", KNeighborsClassifier(1)),
                          ("RBF SVM (C = 10)", SVC(C=10, gamma="scale"))]:
            out[name] = float((clf.fit(x[idx], y).predict(x_test) == ds.y_test).mean())
        for k, v in out.items():
            rows.setdefault(k, []).append(v)
    for k, v in rows.items():
        cells = " ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in v)
        print(f"{k:42s} {cells}   mean {np.mean(v):.3f}")


if __name__ == "__main__":
    main()
