"""Train and cross-validate the multi-task disc grader on the cached SPIDER crops (torch + MONAI).

``lumbarkit train grade --spider ../shared/data/spider --cache runs/grade_cache -o MODELDIR`` calls
:func:`train_grader`. Folds are by patient (every series and disc of a patient in one fold), seeded.
Augmentation (MONAI, per crop): rotation +-10 deg, translation, scaling, gamma, intensity scale and,
for multi-slice stacks, a flip of the slice order. Test-time augmentation is the numpy
:func:`lumbarkit.stages.s5_grade.tta_variants` shared with inference (small shifts, a zoom and gamma;
no horizontal flip: it would swap anterior and posterior).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lumbarkit.tasks import TASKS, select_tasks
from lumbarkit.training.folds import patient_folds, set_seeds
from lumbarkit.training.grade.data import GradeDataset, load_grade_dataset

log = logging.getLogger(__name__)

LOSS_OPTIONS = {"focal": "focal", "cb_ce": "cb_ce", "cb_focal": "cb_focal", "ce": "ce"}


@dataclass
class GradeTrainConfig:
    """Training recipe of the grader; stored in model.json so the model can be reproduced."""

    trunk: str = "vggm"
    loss: str = "focal"  # "focal" or "cb_ce" (class-balanced CE), also "ce", "cb_focal"
    epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    n_folds: int = 5
    width: float | None = None  # trunk channel multiplier (None: the trunk's default)
    beta: float = 0.999
    gamma: float = 2.0
    pfirrmann_weight: float = 2.0  # Pfirrmann and Modic are the headline tasks
    modic_weight: float = 1.5
    threads: int = 1
    fusion: str = "early"  # multi-sequence crops: "early" (channels) or "late" (one trunk per sequence)
    sequence_dropout: float = 0.0  # > 0: channels are sequences; each present one is blanked with this probability

    def architecture(self, n_slices: int, shape_px) -> dict:
        from lumbarkit.nets.grader import default_spec

        spec = default_spec(self.trunk, n_slices, shape_px)
        if self.width is not None:
            spec["width"] = float(self.width)
        if self.fusion != "early":
            spec["fusion"] = self.fusion
        return spec


class _RandSliceFlip:
    """Reverse the slice (channel) order of a multi-slice crop with probability ``prob`` (left/right mirror)."""

    def __init__(self, prob: float, rng: np.random.Generator):
        self.prob, self.rng = prob, rng

    def __call__(self, x):
        return x.flip(0) if x.shape[0] > 1 and self.rng.random() < self.prob else x


class _RandSequenceDropout:
    """Blank each present channel (sequence) with probability ``prob``, always keeping one (a study missing a sequence)."""

    def __init__(self, prob: float, rng: np.random.Generator):
        self.prob, self.rng = prob, rng

    def __call__(self, x):
        present = [c for c in range(x.shape[0]) if float(x[c].abs().max()) > 0]
        drop = [c for c in present if self.rng.random() < self.prob]
        if len(drop) == len(present):
            drop = drop[1:]
        for c in drop:
            x[c] = 0
        return x


def make_augment(seed: int, n_slices: int, sequence_dropout: float = 0.0):
    """Per-crop training augmentation (a callable on a ``(C, H, W)`` tensor). With ``sequence_dropout`` the
    channels are sequences: no slice-order flip, and sequences are blanked at random."""
    from monai import transforms as T

    rng = np.random.default_rng(seed)
    affine = T.RandAffine(prob=0.9, rotate_range=(np.deg2rad(10),), translate_range=(3, 6), scale_range=(0.1, 0.1),
                          mode="bilinear", padding_mode="zeros")
    gamma = T.RandAdjustContrast(prob=0.5, gamma=(0.7, 1.4))
    scale = T.RandScaleIntensity(prob=0.5, factors=0.15)
    for t in (affine, gamma, scale):
        t.set_random_state(seed=int(rng.integers(2**31)))
    flip = _RandSliceFlip(0.0 if sequence_dropout > 0 else 0.5, rng)
    dropout = _RandSequenceDropout(sequence_dropout, rng)

    def augment(x):
        import torch

        blank = x.abs().amax(dim=(1, 2)) == 0  # a missing sequence stays exactly zero
        x = affine(x)
        x = gamma(x)
        x = scale(x)
        x = torch.clamp(flip(torch.as_tensor(x)), 0.0, 1.2)
        x[blank] = 0
        return dropout(x) if sequence_dropout > 0 else x

    return augment


def train_net(data: GradeDataset, cfg: GradeTrainConfig, log_every: int = 1):
    """Train a grader on ``data``; returns the net in eval mode and per-epoch seconds."""
    import torch

    from lumbarkit.nets.grader import build_grader
    from lumbarkit.training.grade.losses import GradeLoss, count_classes

    torch.set_num_threads(int(cfg.threads))
    set_seeds(cfg.seed)
    tasks = select_tasks(None)
    spec = cfg.architecture(data.images.shape[1], data.images.shape[2:])
    net = build_grader(spec)
    counts = {t.name: count_classes(data.labels[t.name], t.n_classes) for t in tasks}
    loss_fn = GradeLoss(tasks, counts, kind=LOSS_OPTIONS[cfg.loss], beta=cfg.beta, gamma=cfg.gamma,
                        task_weights={"pfirrmann": cfg.pfirrmann_weight, "modic": cfg.modic_weight})
    n = len(data)
    steps_per_epoch = max(1, int(np.ceil(n / cfg.batch_size)))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15)
    augment = make_augment(cfg.seed, data.images.shape[1], cfg.sequence_dropout)
    images = torch.as_tensor(data.images)
    targets = {t.name: torch.as_tensor(data.labels[t.name]) for t in tasks}
    rng = np.random.default_rng(cfg.seed)
    epoch_s = []
    for epoch in range(cfg.epochs):
        net.train()
        t0 = time.time()
        order = rng.permutation(n)
        losses = []
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            x = torch.stack([augment(images[i]) for i in idx]).float()
            logits = net(x)
            loss, _ = loss_fn(logits, {k: v[idx] for k, v in targets.items()})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        epoch_s.append(time.time() - t0)
        if (epoch + 1) % log_every == 0:
            log.info("%s/%s epoch %d loss %.4f (%.1f s)", cfg.trunk, cfg.loss, epoch + 1, np.mean(losses), epoch_s[-1])
    net.eval()
    return net, epoch_s


def predict_torch(net, images: np.ndarray, tta: bool, batch: int = 128) -> dict[str, np.ndarray]:
    """Class probabilities per task of crops ``(N, C, H, W)``, averaged over the TTA variants when ``tta``."""
    import torch

    from lumbarkit.stages.s5_grade import softmax, tta_variants

    variants = tta_variants(images) if tta else [np.asarray(images, dtype=np.float32)]
    total: dict[str, np.ndarray] = {}
    net.eval()
    with torch.no_grad():
        for v in variants:
            for s in range(0, len(v), batch):
                out = net(torch.as_tensor(np.ascontiguousarray(v[s:s + batch])))
                for k, logits in out.items():
                    p = softmax(logits.numpy().astype(np.float64), axis=1)
                    total.setdefault(k, np.zeros((len(v), p.shape[1])))[s:s + batch] += p
    return {k: (p / len(variants)).astype(np.float32) for k, p in total.items()}


def train_grader(cache: str | Path, out: str | Path, cfg: GradeTrainConfig, fold: int | None = None) -> Path:
    """Train on all paired discs (``fold=None``) and export a model folder to ``out``, or train without
    fold ``fold`` of the patient-level ``cfg.n_folds``-fold split and write its held-out predictions
    (``out/fold{fold}.npz``, with and without TTA) and metrics (``out/fold{fold}.json``)."""
    data = load_grade_dataset(cache)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    folds = patient_folds(data.patient, cfg.n_folds, cfg.seed)
    fold_of = np.array([folds[p] for p in data.patient])
    if fold is None:
        from lumbarkit.training.grade.export import export_grader

        net, epoch_s = train_net(data, cfg)
        return export_grader(net, cfg, data, out, epoch_seconds=epoch_s)
    train_idx, test_idx = np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)
    log.info("fold %d: %d training discs, %d held out", fold, len(train_idx), len(test_idx))
    net, epoch_s = train_net(data.subset(train_idx), cfg)
    return write_fold(net, data, test_idx, cfg, fold, out, epoch_s)


def write_fold(net, data: GradeDataset, test_idx: np.ndarray, cfg: GradeTrainConfig, fold: int, out: Path,
               epoch_s: list[float]) -> Path:
    """Held-out probabilities (with and without TTA) of one fold as ``fold{k}.npz`` + a json summary."""
    from lumbarkit.training.grade.metrics import evaluate_grades

    test = data.subset(test_idx)
    arrays = {"index": test_idx}
    summary = {"fold": fold, "config": asdict(cfg), "n_test": int(len(test_idx)), "epoch_seconds": epoch_s}
    for tta in (False, True):
        t0 = time.time()
        prob = predict_torch(net, test.images, tta)
        tag = "tta" if tta else "plain"
        summary[f"predict_seconds_{tag}"] = round(time.time() - t0, 2)
        for k, p in prob.items():
            arrays[f"{tag}__{k}"] = p
        m = evaluate_grades(TASKS, test.labels, prob, n_boot=0)
        summary[tag] = headline(m)
    path = out / f"fold{fold}.npz"
    (out / f"fold{fold}.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    tmp = out / f".fold{fold}.npz.partial"
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    os.replace(tmp, path)  # the .npz marks the fold done: readers in other processes never see half a file
    log.info("fold %d: %s", fold, summary["tta"])
    return path


HEADLINE = (
    ("pfirrmann", "balanced_accuracy", "pfirrmann_bacc"),
    ("pfirrmann", "kappa_quadratic", "pfirrmann_qwk"),
    ("pfirrmann", "ldd_accuracy", "ldd3_acc"),
    ("modic", "any_balanced_accuracy", "modic_any_bacc"),
)


def headline(metrics: dict) -> dict:
    """The ablation table's numbers from an :func:`evaluate_grades` result."""
    o = metrics["overall"]
    row = {col: o[task]["metrics"].get(key) for task, key, col in HEADLINE}
    for t in TASKS:
        if t.kind == "binary":
            row[f"{t.name}_bacc"] = o[t.name]["metrics"].get("balanced_accuracy")
            row[f"{t.name}_auc"] = o[t.name]["metrics"].get("auc")
    return row


def collect_oof(out: str | Path, data: GradeDataset, n_folds: int, tta: bool) -> tuple[dict[str, np.ndarray], np.ndarray, list[int]]:
    """Out-of-fold probabilities of every finished fold: (task -> (N, C) probs, row indices, folds done)."""
    out = Path(out)
    tag = "tta" if tta else "plain"
    idx, probs, done = [], {}, []
    for k in range(n_folds):
        p = out / f"fold{k}.npz"
        if not p.exists():
            continue
        z = np.load(p)
        idx.append(z["index"])
        for t in TASKS:
            probs.setdefault(t.name, []).append(z[f"{tag}__{t.name}"])
        done.append(k)
    if not idx:
        return {}, np.zeros(0, dtype=int), []
    return {k: np.concatenate(v) for k, v in probs.items()}, np.concatenate(idx), done
