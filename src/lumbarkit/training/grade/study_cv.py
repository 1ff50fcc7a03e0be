"""Cross-validation of the study grader (T1 and T2 crops of a disc in one network) and its ablation.

Folds are by patient (seed ``fold_seed``, the same split as the single-series grader). Each fold trains
one net per model seed on the other folds' study samples (:func:`lumbarkit.training.grade.study_data.study_dataset`,
sequence dropout on) and writes, for its held-out patients, the class probabilities given both sequences,
T2 only and T1 only (the other channel blanked, as inference does for a study without it), plus the
fold net as ONNX: the shipped model is the ensemble of these fold nets.

``python -m lumbarkit.training.grade.study_cv --cache runs/grade_cache_v4 -o runs/study_cv/early --fusion early``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from lumbarkit.training.folds import patient_folds
from lumbarkit.training.grade.data import load_grade_dataset
from lumbarkit.training.grade.study_data import concatenate, keep_channels, single_sequence_samples, study_dataset
from lumbarkit.training.grade.train import GradeTrainConfig, predict_torch, train_net

log = logging.getLogger(__name__)

MODES = {"T1+T2": ("T1", "T2"), "T2": ("T2",), "T1": ("T1",)}  # inputs given to the net at test time
FOLD_SEED = 0


def fold_of_samples(patients: np.ndarray, n_folds: int, fold_seed: int = FOLD_SEED) -> np.ndarray:
    folds = patient_folds(patients, n_folds, fold_seed)
    return np.array([folds[p] for p in patients])


def training_set(base, data, train_idx: np.ndarray, expand: bool):
    """The study samples of the training patients, plus (``expand``) each of their series' crops alone."""
    train = data.subset(train_idx)
    if not expand:
        return train
    return concatenate(train, single_sequence_samples(base, set(train.patient.tolist())))


def study_fold(cache: str | Path, out: str | Path, cfg: GradeTrainConfig, fold: int, model_seeds=(0, 1), expand: bool = False) -> Path:
    """Train fold ``fold`` once per model seed; write ``fold{k}.npz`` (held-out probabilities per seed and input
    mode), ``fold{k}.json`` and ``fold{k}_seed{s}.onnx``. Returns the .npz path (written last: it marks the fold done).
    ``expand`` adds every training series' crop alone as a one-sequence sample."""
    from lumbarkit.nets.grader import export_onnx

    base = load_grade_dataset(cache)
    data = study_dataset(base)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fold_of = fold_of_samples(data.patient, cfg.n_folds)
    train_idx, test_idx = np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)
    test = data.subset(test_idx)
    arrays: dict[str, np.ndarray] = {"index": test_idx}
    summary = {"fold": fold, "config": asdict(cfg), "expand": expand, "n_train": int(len(train_idx)), "n_test": int(len(test_idx)),
               "seeds": {}}
    for seed in model_seeds:
        net, epoch_s = train_net(training_set(base, data, train_idx, expand), replace(cfg, seed=int(seed)))
        export_onnx(net, out / f"fold{fold}_seed{seed}.onnx", data.images.shape[1:])
        for mode, keep in MODES.items():
            for task, p in predict_torch(net, keep_channels(test.images, keep), tta=False).items():
                arrays[f"s{seed}__{mode}__{task}"] = p
        summary["seeds"][str(seed)] = {"epoch_seconds": [round(s, 2) for s in epoch_s]}
    (out / f"fold{fold}.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    tmp = out / f".fold{fold}.npz.partial"
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    os.replace(tmp, out / f"fold{fold}.npz")
    return out / f"fold{fold}.npz"


def oof(out: Path, n_folds: int) -> tuple[np.ndarray, dict[str, np.ndarray], list[int]]:
    """Out-of-fold arrays of every finished fold: (sample indices, key -> stacked probabilities, folds done);
    only keys every finished fold holds."""
    idx, arrays, done = [], [], []
    for k in range(n_folds):
        path = Path(out) / f"fold{k}.npz"
        if path.exists():
            z = np.load(path)
            idx.append(z["index"])
            arrays.append({key: z[key] for key in z.files if key != "index"})
            done.append(k)
    if not done:
        return np.zeros(0, int), {}, []
    keys = set.intersection(*(set(a) for a in arrays))
    return np.concatenate(idx), {key: np.concatenate([a[key] for a in arrays]) for key in sorted(keys)}, done


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True)
    parser.add_argument("-o", "--out", required=True)
    parser.add_argument("--fusion", default="early", choices=("early", "late"))
    parser.add_argument("--trunk", default="resnet")
    parser.add_argument("--loss", default="cb_ce")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--sequence-dropout", type=float, default=0.25)
    parser.add_argument("--folds", type=int, nargs="*", default=None)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--expand", action="store_true", help="also train on every series' crop alone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = GradeTrainConfig(trunk=args.trunk, loss=args.loss, epochs=args.epochs, fusion=args.fusion,
                           sequence_dropout=args.sequence_dropout, threads=args.threads)
    for fold in args.folds if args.folds is not None else range(cfg.n_folds):
        if (Path(args.out) / f"fold{fold}.npz").exists():
            continue  # resumable
        t0 = time.time()
        study_fold(args.cache, args.out, cfg, fold, tuple(args.seeds), expand=args.expand)
        log.info("fold %d done in %.0f s", fold, time.time() - t0)


if __name__ == "__main__":
    main()
