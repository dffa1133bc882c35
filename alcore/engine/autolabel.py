"""Confident auto-labelling: pseudo-label the pool images the model is surest about.

After (or between) active-learning rounds, the most confident unlabeled pool images
get the model's predicted class as a pseudo-label, in batches; after each batch the
model is retrained on real plus pseudo labels. In simulation the truth is known, so
every step reports how accurate the pseudo-labels are and what they do to test
accuracy: users see when self-training helps and when it feeds the model its own
mistakes.

Reference: Wang, K., Zhang, D., Li, Y., Zhang, R. & Lin, L. (2016). Cost-Effective
Active Learning for Deep Image Classification (CEAL). IEEE TCSVT.
"""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from alcore.engine.loop import Experiment


class AutoLabelStep(BaseModel):
    step: int = Field(ge=0, description="0: real labels only")
    n_real: int
    n_pseudo: int
    pseudo_accuracy: float | None = Field(None, description="share of all pseudo-labels so far that are right")
    batch_accuracy: float | None = Field(None, description="share of this step's new pseudo-labels that are right")
    min_confidence: float | None = Field(None, description="lowest confidence in this step's batch")
    test_accuracy: float
    test_loss: float


class AutoLabelReport(BaseModel):
    per_step: int = Field(description="pseudo-labels added per step")
    min_confidence: float
    stop_reason: str
    steps: list[AutoLabelStep]
    pseudo_indices: list[int] = Field(default_factory=list, description="pool indices pseudo-labelled, in order")
    pseudo_labels: list[int] = Field(default_factory=list, description="their pseudo-labels (classes)")

    @property
    def gain(self) -> float:
        """Test accuracy after the last step minus with real labels only."""
        return self.steps[-1].test_accuracy - self.steps[0].test_accuracy


def auto_label(exp: Experiment, per_step: int, steps: int, min_confidence: float = 0.0) -> AutoLabelReport:
    """Pseudo-label up to ``steps`` batches of ``per_step`` of the most confident unlabeled
    pool images (only those with confidence >= ``min_confidence``), retraining after each.

    Step 0 retrains on the real labels exactly as the run's last round did (same seed
    stream, so the same accuracy); pseudo-labels are used for training only, never for
    the validation split that early stopping watches."""
    if not exp.rounds:
        raise ValueError("run at least one active-learning round before auto-labelling")
    if per_step < 1 or steps < 1:
        raise ValueError(f"per_step and steps must be at least 1, got {per_step} and {steps}")
    if not 0.0 <= min_confidence < 1.0:
        raise ValueError(f"min_confidence must lie in [0, 1), got {min_confidence}")
    ds, trainer = exp.dataset, exp.trainer
    last = len(exp.rounds) - 1
    free = ~exp._taken.copy()
    pseudo_idx: list[int] = []
    pseudo_lab: list[int] = []
    records: list[AutoLabelStep] = []
    reason = f"{steps} steps done"
    cap = exp.n_labeled + steps * per_step
    batch_acc = batch_min = None
    for s in range(steps + 1):
        with trainer.lock:
            exp._train_round(last + s, (np.asarray(pseudo_idx, dtype=np.int64), np.asarray(pseudo_lab)), cap)
            acc, loss, _ = exp._evaluate()
            pseudo_acc = (float((ds.y_pool[pseudo_idx] == np.asarray(pseudo_lab)).mean())
                          if pseudo_idx else None)
            records.append(AutoLabelStep(step=s, n_real=exp.n_labeled, n_pseudo=len(pseudo_idx),
                                         pseudo_accuracy=pseudo_acc, batch_accuracy=batch_acc,
                                         min_confidence=batch_min, test_accuracy=acc, test_loss=loss))
            if s == steps:
                break
            cand = np.flatnonzero(free)
            if len(cand) == 0:
                reason = "no unlabeled pool images left"
                break
            probs = trainer.predict_proba(ds.inputs_pool[cand])
        conf = probs.max(axis=1)
        order = np.lexsort((cand, -conf))  # most confident first, ties by pool index
        order = order[conf[order] >= min_confidence][:per_step]
        if len(order) == 0:
            reason = f"no unlabeled image is predicted with confidence >= {min_confidence}"
            break
        chosen, labels = cand[order], probs[order].argmax(axis=1)
        batch_acc = float((ds.y_pool[chosen] == labels).mean())
        batch_min = float(conf[order].min())
        pseudo_idx.extend(int(i) for i in chosen)
        pseudo_lab.extend(int(c) for c in labels)
        free[chosen] = False
    return AutoLabelReport(per_step=per_step, min_confidence=min_confidence, stop_reason=reason, steps=records,
                           pseudo_indices=pseudo_idx, pseudo_labels=pseudo_lab)
