"""Train the study grader on every study sample and export it as a model folder (``models/grade_study``).

The shipped net is the ensemble of the nets of ``seeds`` (mean softmax, exported as one ONNX graph whose
outputs are the log of the mean probabilities, so inference's softmax returns the mean), trained on all
patients with the recipe cross-validated by :mod:`lumbarkit.training.grade.study_cv`; the CV row of the
same number of nets in the ablation is its estimate.

``python -m lumbarkit.training.grade.study_export --cache runs/grade_cache_v4 --fusion early -o src/lumbarkit/models/grade_study``
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from lumbarkit.training.grade.data import load_grade_dataset
from lumbarkit.training.grade.study_data import STUDY_SEQUENCES, study_dataset
from lumbarkit.training.grade.train import GradeTrainConfig, train_net

MODEL_NAME = "lumbarkit-grade-study"


def ensemble(nets):
    """One module averaging the softmax of ``nets``; outputs log-probabilities per task (logits for a softmax)."""
    import torch
    from torch import nn

    class Ensemble(nn.Module):
        def __init__(self):
            super().__init__()
            self.nets = nn.ModuleList(nets)
            self.task_names = nets[0].task_names
            self.spec = {**nets[0].spec, "members": len(nets)}

        def forward(self, x):
            outs = [net(x) for net in self.nets]
            return {t: torch.log(torch.stack([torch.softmax(o[t], dim=1) for o in outs]).mean(dim=0).clamp_min(1e-12))
                    for t in self.task_names}

    return Ensemble().eval()


def export_study_grader(cache: str | Path, out: str | Path, cfg: GradeTrainConfig, seeds=(0, 1), metrics: dict | None = None,
                        expand: bool = False) -> Path:
    from lumbarkit.training.grade.export import export_grader
    from lumbarkit.training.grade.study_cv import training_set

    base = load_grade_dataset(cache)
    data = study_dataset(base)
    train = training_set(base, data, np.arange(len(data)), expand)
    nets, seconds = [], []
    for seed in seeds:
        net, epoch_s = train_net(train, replace(cfg, seed=int(seed)))
        nets.append(net)
        seconds += epoch_s
    model = ensemble(nets)
    extra = {"sequences": list(STUDY_SEQUENCES),
             "channels": "T1 crop, T2 crop (2D T2, else T2 SPACE); an all-zero channel = the study lacks that sequence"}
    path = export_grader(model, cfg, data, out, epoch_seconds=seconds, metrics=metrics, name=MODEL_NAME, input_extra=extra)
    doc = json.loads((Path(out) / "model.json").read_text())
    doc["architecture"]["sequences"] = list(STUDY_SEQUENCES)
    doc["training"]["seeds"] = [int(s) for s in seeds]
    doc["training"]["expand"] = bool(expand)
    doc["training"]["samples"] = {"study samples": int(len(data)), "trained on": int(len(train))}
    (Path(out) / "model.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True)
    parser.add_argument("-o", "--out", required=True)
    parser.add_argument("--fusion", default="early", choices=("early", "late"))
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--sequence-dropout", type=float, default=0.25)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--metrics", default=None, help="ablation JSON (study_card) to record in model.json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--expand", action="store_true", help="also train on every series' crop alone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = GradeTrainConfig(trunk="resnet", loss="cb_ce", epochs=args.epochs, fusion=args.fusion,
                           sequence_dropout=args.sequence_dropout, threads=args.threads)
    metrics = json.loads(Path(args.metrics).read_text()) if args.metrics else None
    print(export_study_grader(args.cache, args.out, cfg, tuple(args.seeds), metrics, expand=args.expand))


if __name__ == "__main__":
    main()
