"""Multi-task grading loss: one term per task, missing labels (-1) masked out.

Per task the loss is one of

* ``"ce"``: cross-entropy;
* ``"cb_ce"``: class-balanced cross-entropy, class weights from the effective number of samples
  ``w_c = (1 - beta) / (1 - beta ** n_c)`` normalised to sum to the number of classes
  (Cui et al. 2019, CVPR);
* ``"focal"``: softmax focal loss ``-(1 - p_y) ** gamma * log p_y`` (MONAI ``FocalLoss``);
* ``"cb_focal"``: focal loss with the class-balanced weights.

A task's term is ``sum_i w_{y_i} * l_i / N`` over the ``N`` samples labelled for that task (``w = 1``
without class balancing), as in Cui et al.; a task with no label in the batch contributes 0 (with
a graph, so ``backward`` still works). The total is the ``task_weights``-weighted sum of the terms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from lumbarkit.tasks import MISSING, Task

LOSS_KINDS = ("ce", "cb_ce", "focal", "cb_focal")


def count_classes(labels: np.ndarray, n_classes: int) -> list[int]:
    """Number of samples per class index in ``labels`` (missing ``-1`` ignored)."""
    lab = np.asarray(labels, dtype=int)
    lab = lab[(lab >= 0) & (lab < n_classes)]
    return [int(v) for v in np.bincount(lab, minlength=n_classes)]


def class_balanced_weights(counts: Sequence[int], beta: float = 0.999) -> np.ndarray:
    """Effective-number class weights (Cui et al. 2019), summing to ``len(counts)``; empty classes count as 1."""
    n = np.maximum(np.asarray(counts, dtype=float), 1.0)
    w = (1.0 - beta) / (1.0 - np.power(beta, n)) if beta < 1.0 else 1.0 / n
    return w / w.sum() * len(n)


class GradeLoss(nn.Module):
    """Sum of per-task losses with missing labels masked out.

    Parameters
    ----------
    tasks : the model's tasks (:mod:`lumbarkit.tasks`), in head order.
    class_counts : task name -> samples per class in the training set (needed by ``cb_*`` kinds).
    kind : one of :data:`LOSS_KINDS`, or a mapping task name -> kind.
    beta : effective-number parameter for class balancing (0.999, or 0.9999 for larger sets).
    gamma : focal exponent.
    task_weights : task name -> weight of its term (default 1 each).
    """

    def __init__(self, tasks: Sequence[Task], class_counts: Mapping[str, Sequence[int]] | None = None, *,
                 kind: str | Mapping[str, str] = "cb_ce", beta: float = 0.999, gamma: float = 2.0,
                 task_weights: Mapping[str, float] | None = None):
        from monai.losses import FocalLoss

        super().__init__()
        self.tasks = tuple(tasks)
        self.kinds = {t.name: (kind.get(t.name, "ce") if isinstance(kind, Mapping) else kind) for t in self.tasks}
        bad = {k for k in self.kinds.values() if k not in LOSS_KINDS}
        if bad:
            raise ValueError(f"unknown loss kind(s) {sorted(bad)}; choose from {', '.join(LOSS_KINDS)}")
        self.task_weights = {t.name: float((task_weights or {}).get(t.name, 1.0)) for t in self.tasks}
        self.focal = FocalLoss(to_onehot_y=True, use_softmax=True, gamma=float(gamma), reduction="none")
        for t in self.tasks:
            if self.kinds[t.name].startswith("cb_"):
                if class_counts is None or t.name not in class_counts:
                    raise ValueError(f"class-balanced loss for {t.name!r} needs its class counts")
                w = class_balanced_weights(class_counts[t.name], beta)
            else:
                w = np.ones(t.n_classes)
            if len(w) != t.n_classes:
                raise ValueError(f"{t.name}: {len(w)} class counts for {t.n_classes} classes")
            self.register_buffer(f"w_{t.name}", torch.as_tensor(w, dtype=torch.float32))

    def class_weights(self, name: str) -> torch.Tensor:
        return getattr(self, f"w_{name}")

    def task_loss(self, name: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of one task: ``logits`` (B, C), ``target`` (B,) class indices with -1 = missing."""
        valid = target != MISSING
        if not bool(valid.any()):
            return logits.sum() * 0.0
        z, y = logits[valid], target[valid].long()
        if self.kinds[name].endswith("focal"):
            per = self.focal(z, y[:, None]).sum(dim=1)
        else:
            per = nn.functional.cross_entropy(z, y, reduction="none")
        w = self.class_weights(name).to(z.dtype)[y]
        return (w * per).sum() / y.numel()

    def forward(self, logits: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and each task's (unweighted) term as floats for logging."""
        total = None
        parts: dict[str, float] = {}
        for t in self.tasks:
            term = self.task_loss(t.name, logits[t.name], targets[t.name])
            parts[t.name] = float(term.detach())
            total = term * self.task_weights[t.name] if total is None else total + term * self.task_weights[t.name]
        return total, parts
