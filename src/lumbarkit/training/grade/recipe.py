"""The whole grader recipe: crop cache, cross-validation (or the ablation), final model, model card."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from lumbarkit.training.grade.card import cv_metrics, write_card
from lumbarkit.training.grade.data import build_grade_dataset
from lumbarkit.training.grade.train import GradeTrainConfig, train_grader


def train_grade_model(spider: Path, cache: Path, out: Path, cfg: GradeTrainConfig, *, ablation_dir: Path | None = None,
                      folds=None, seg_model: Path | None = None, reproduce: str = "") -> Path:
    """Build the SPIDER crop cache (stage 1 runs once), cross-validate ``cfg`` on ``folds`` (default all; resumable)
    or run the ablation in ``ablation_dir`` and take its best configuration, train the final grader on every disc
    into ``out`` and write its model card (``reproduce``: the command line). Returns the card's path."""
    build_grade_dataset(spider, cache, seg_model=seg_model)
    best, tta, ablation_md = None, True, None
    if ablation_dir is not None:
        from lumbarkit.training.grade.ablation import config_name, run_ablation

        ablation_md = run_ablation(cache, ablation_dir, cfg, folds=folds)
        best = json.loads((Path(ablation_dir) / "ablation_best.json").read_text())
        cfg = replace(cfg, trunk=best["trunk"], loss=best["loss"])
        cv_dir, tta = Path(ablation_dir) / config_name(cfg), bool(best["tta"])
    else:
        cv_dir = Path(out) / "cv"
        for k in (folds if folds else range(cfg.n_folds)):
            if not (cv_dir / f"fold{k}.npz").exists():
                train_grader(cache, cv_dir, cfg, fold=k)
    train_grader(cache, out, cfg)
    return write_card(out, cv_metrics(cache, cv_dir, cfg.n_folds, tta), ablation_md, best, reproduce=reproduce)
