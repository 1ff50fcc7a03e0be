"""Train, cross-validate and export the 2D segmentation net (torch + MONAI).

``lumbarkit train segment --data ../shared/data -o MODELDIR`` calls :func:`train_segmentation`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lumbarkit.seg_classes import NUM_CLASSES
from lumbarkit.training.folds import set_seeds, source_balanced_folds
from lumbarkit.training.segment.data import (
    IGNORE,
    TrainingSlice,
    allowed_table,
    list_cases,
    load_case_slices,
)

log = logging.getLogger(__name__)

# How often each source is drawn per training sample (sources differ a lot in size).
DEFAULT_SOURCE_WEIGHTS = {"vb3": 0.18, "vb2": 0.11, "vb1": 0.14, "ivd": 0.09, "spider_space": 0.22, "slices2d": 0.06,
                          "spider_masks": 0.20}


@dataclass
class SegTrainConfig:
    """Training recipe; stored in model.json so the model can be reproduced."""

    target_mm: float = 1.0
    patch: int = 192
    batch_size: int = 16
    steps: int = 4000
    lr: float = 2e-3
    weight_decay: float = 1e-4
    dice_weight: float = 0.5
    seed: int = 0
    n_folds: int = 5
    channels: tuple = (16, 32, 64, 128, 256)
    strides: tuple = (2, 2, 2, 2)
    num_res_units: int = 0
    invert_prob: float = 0.15  # contrast inversion (T2 CSF bright -> dark as on T1)
    lowres_prob: float = 0.2  # simulated coarser acquisition (down- and up-sampling)
    source_weights: dict = field(default_factory=lambda: dict(DEFAULT_SOURCE_WEIGHTS))

    def architecture(self) -> dict:
        return {"name": "monai.UNet", "spatial_dims": 2, "in_channels": 1, "out_channels": NUM_CLASSES,
                "channels": list(self.channels), "strides": list(self.strides), "num_res_units": self.num_res_units,
                "norm": "instance"}


def invert_intensity(image):
    """Contrast inversion of an image in [0, 1] (CSF bright on T2 becomes dark, as on T1)."""
    return 1.0 - image


def _transforms(cfg: SegTrainConfig):
    from monai import transforms as T

    keys = ["image", "codes"]
    return T.Compose([
        T.SpatialPadd(keys, spatial_size=(cfg.patch, cfg.patch)),
        T.RandAffined(keys, prob=1.0, spatial_size=(cfg.patch, cfg.patch), rotate_range=(np.deg2rad(18),),
                      scale_range=(0.2, 0.2), shear_range=(0.05, 0.05), translate_range=(70, 50),
                      mode=("bilinear", "nearest"), padding_mode="zeros"),
        T.RandBiasFieldd(["image"], prob=0.3, coeff_range=(0.0, 0.3)),
        T.RandAdjustContrastd(["image"], prob=0.5, gamma=(0.6, 1.6)),
        T.RandHistogramShiftd(["image"], prob=0.3, num_control_points=(5, 10)),
        T.RandScaleIntensityd(["image"], prob=0.5, factors=0.2),
        T.RandGaussianSmoothd(["image"], prob=0.2, sigma_x=(0.3, 1.0), sigma_y=(0.3, 1.0)),
        T.RandGaussianNoised(["image"], prob=0.3, std=0.04),
        T.RandLambdad(["image"], func=invert_intensity, prob=cfg.invert_prob),
        T.RandSimulateLowResolutiond(["image"], prob=cfg.lowres_prob, downsample_mode="nearest", upsample_mode="bilinear",
                                     zoom_range=(0.5, 1.0)),
    ])


class _PatchStream:
    """Infinite stream of augmented (image, codes) patch batches, sources drawn by weight.

    Iterated by a one-worker DataLoader so augmentation overlaps the training step."""

    def __init__(self, slices: list[TrainingSlice], cfg: SegTrainConfig, seed: int):
        self.by_source: dict[str, list[TrainingSlice]] = {}
        for s in slices:
            self.by_source.setdefault(s.source, []).append(s)
        names = sorted(self.by_source)
        w = np.array([cfg.source_weights.get(n, 0.05) for n in names], dtype=float)
        self.sources, self.p = names, w / w.sum()
        self.cfg, self.seed = cfg, seed

    def __iter__(self):
        import torch

        rng = np.random.default_rng(self.seed)
        transform = _transforms(self.cfg)
        transform.set_random_state(seed=self.seed)
        while True:
            imgs, codes = [], []
            for _ in range(self.cfg.batch_size):
                pool = self.by_source[self.sources[rng.choice(len(self.sources), p=self.p)]]
                s = pool[rng.integers(len(pool))]
                out = transform({"image": s.image[None], "codes": s.codes[None].astype(np.float32)})
                imgs.append(torch.as_tensor(np.asarray(out["image"]), dtype=torch.float32))
                codes.append(torch.as_tensor(np.asarray(out["codes"])[0]).round().long())
            yield torch.stack(imgs), torch.stack(codes)


def _batches(slices: list[TrainingSlice], cfg: SegTrainConfig, seed: int):
    import torch

    stream = _PatchStream(slices, cfg, seed)

    class _Iterable(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(stream)

    return iter(torch.utils.data.DataLoader(_Iterable(), batch_size=None, num_workers=1, prefetch_factor=4, persistent_workers=False))


def train_net(slices: list[TrainingSlice], cfg: SegTrainConfig, workdir: Path, progress: bool = True):
    """Train the net on ``slices``; checkpoints to ``workdir/checkpoint.pt`` and resumes from it."""
    import torch

    from lumbarkit.nets.segmentation import build_segmentation_net
    from lumbarkit.training.segment.losses import (
        determinate_dice_loss,
        marginal_cross_entropy,
    )

    set_seeds(cfg.seed, monai_determinism=True)
    workdir.mkdir(parents=True, exist_ok=True)
    net = build_segmentation_net(cfg.architecture())
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.05)
    table = torch.as_tensor(allowed_table()) > 0
    start = 0
    ckpt = workdir / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        net.load_state_dict(state["net"]); opt.load_state_dict(state["opt"]); sched.load_state_dict(state["sched"])
        start = state["step"]
        log.info("resumed from step %d", start)
    batches = _batches(slices, cfg, cfg.seed + start)
    net.train()
    t0, running = time.time(), []
    bar = _progress(progress, cfg.steps, start)
    for step in range(start, cfg.steps):
        x, codes = next(batches)
        allowed = table[codes].permute(0, 3, 1, 2)
        valid = codes != IGNORE
        logits = net(x)
        loss = marginal_cross_entropy(logits, allowed, valid) + cfg.dice_weight * determinate_dice_loss(logits, allowed, valid)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step(); sched.step()
        running.append(float(loss.detach()))
        if bar:
            bar[0].update(bar[1], advance=1, description=f"segment loss {np.mean(running[-50:]):.3f}")
        if (step + 1) % 100 == 0:
            log.info("step %d loss %.4f (%.1f s)", step + 1, np.mean(running[-100:]), time.time() - t0)
        if (step + 1) % 500 == 0 or step + 1 == cfg.steps:
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step + 1}, ckpt)
    if bar:
        bar[0].stop()
    net.eval()
    return net


def _progress(enabled: bool, total: int, start: int):
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    p = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn())
    p.start()
    return p, p.add_task("segment", total=total, completed=start)


def finished_net(workdir: Path, cfg: SegTrainConfig):
    """The net of a finished run in ``workdir`` (checkpoint at the last step), else None."""
    import torch

    from lumbarkit.nets.segmentation import build_segmentation_net

    ckpt = workdir / "checkpoint.pt"
    if not ckpt.exists():
        return None
    state = torch.load(ckpt, weights_only=False)
    if state["step"] < cfg.steps:
        return None
    net = build_segmentation_net(cfg.architecture())
    net.load_state_dict(state["net"])
    net.eval()
    log.info("using the finished run in %s", workdir)
    return net


def load_slices(data: Path, cfg: SegTrainConfig, cases: list[dict]) -> list[TrainingSlice]:
    out: list[TrainingSlice] = []
    for c in cases:
        out.extend(load_case_slices(c, cfg.target_mm))
    return out


def train_segmentation(data: Path, out: Path, cfg: SegTrainConfig, fold: int | None = None, progress: bool = True) -> Path:
    """Train on all cases (``fold=None``) and export a model folder to ``out``, or train without
    fold ``fold`` of a patient-level ``cfg.n_folds``-fold split and write that fold's held-out
    predictions' metrics to ``out/fold{fold}.json``."""
    from lumbarkit.training.segment.export import export_model_folder

    cases = list_cases(data)
    folds = source_balanced_folds(cases, cfg.n_folds, cfg.seed)
    train_cases = cases if fold is None else [c for c in cases if folds[c["patient"]] != fold]
    workdir = out / ("work" if fold is None else f"work_fold{fold}")
    net = finished_net(workdir, cfg)
    if net is None:
        log.info("training on %d cases", len(train_cases))
        net = train_net(load_slices(data, cfg, train_cases), cfg, workdir, progress)
    if fold is None:
        return export_model_folder(net, cfg, out, train_cases)
    from lumbarkit.training.segment.evaluate import evaluate_torch_fold

    test_cases = [c for c in cases if folds[c["patient"]] == fold]
    result = evaluate_torch_fold(net, cfg, test_cases)
    path = out / f"fold{fold}.json"
    path.write_text(json.dumps(result, indent=1, sort_keys=True))
    return path


def train_segmentation_model(data: Path, out: Path, cfg: SegTrainConfig, cv: bool = False) -> Path:
    """With ``cv`` every patient-level fold (resumable: finished folds are kept), then the final model on all cases
    (unless ``out`` already holds one), then the model card with the CV metrics. Returns the card's path."""
    from lumbarkit.training.segment.card import collect_cv, write_card

    out = Path(out)
    if cv:
        for k in range(cfg.n_folds):
            if not (out / f"fold{k}.json").exists():
                train_segmentation(data, out, cfg, fold=k)
    if not (out / "model.onnx").exists():
        train_segmentation(data, out, cfg)
    return write_card(out, collect_cv(out, cfg.n_folds))
