"""The study grader's ablation: out-of-fold metrics per fusion, input and ensemble, beside the single-series grader.

Rows (patient-level 5-fold CV, held-out patients only, 95 % patient-bootstrap intervals):

* each fusion (early: T1 and T2 as channels of one trunk; late: one shared trunk per sequence, features
  averaged) given what the study has (input "T1+T2"), T2 only and T1 only (the other channel blanked), as one net (seed 0)
  and as the ensemble of the nets of two seeds (mean softmax);
* the single-series grader (today's recipe, retrained on the same crops and folds) on the T2 crop
  (2D T2, else the SPACE mid-slice) and on the T1 crop of the same discs.

Two sample sets: every (patient, disc) with the sequences the input needs, and the subset with both T1
and T2 (the same discs for every row, so rows compare directly).

``python -m lumbarkit.training.grade.study_card --cache runs/grade_cache_v4 --cv early=runs/study_cv/early
--cv late=runs/study_cv/late --single runs/single_cv -o runs/study_cv/ablation.json``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lumbarkit.tasks import TASKS
from lumbarkit.training.grade.data import load_grade_dataset
from lumbarkit.training.grade.metrics import evaluate_grades
from lumbarkit.training.grade.study_cv import MODES, oof
from lumbarkit.training.grade.study_data import CHANNEL_SOURCES, study_dataset

N_FOLDS = 5
COLUMNS = (("pfirrmann", "balanced_accuracy", "Pfirrmann bacc"), ("pfirrmann", "kappa_quadratic", "Pfirrmann qwk"),
           ("pfirrmann", "ccc", "Pfirrmann CCC"), ("pfirrmann", "ldd_accuracy", "3-class acc"),
           ("modic", "any_balanced_accuracy", "Modic any bacc"), ("modic", "balanced_accuracy", "Modic type bacc"))


def _needs(mode: str) -> tuple[str, ...]:
    return MODES[mode]


def _score(study, idx: np.ndarray, probs: dict[str, np.ndarray], n_boot: int) -> dict:
    labels = {t.name: study.labels[t.name][idx] for t in TASKS}
    m = evaluate_grades(TASKS, labels, probs, patient_ids=study.patient[idx], n_boot=n_boot)["overall"]
    out = {"n": int(len(idx))}
    for task, key, name in COLUMNS:
        value = m[task]["metrics"].get(key)
        ci = (m[task].get("ci95") or {}).get(key)
        out[name] = {"value": value, "ci95": ci}
    return out


def fusion_rows(study, cv_dir: Path, fusion: str, subsets: dict[str, np.ndarray], n_boot: int) -> list[dict]:
    index, arrays, done = oof(cv_dir, N_FOLDS)
    rows = []
    seeds = sorted({k.split("__")[0] for k in arrays})
    position = {int(i): k for k, i in enumerate(index)}
    for mode in MODES:
        for ensemble in (False, True):
            if ensemble and len(seeds) < 2:
                continue
            use = seeds if ensemble else seeds[:1]
            probs = {t.name: np.mean([arrays[f"{s}__{mode}__{t.name}"] for s in use], axis=0) for t in TASKS}
            for subset, mask in subsets.items():
                has = np.array([mode == "T1+T2" or all(q in study.sequence[i] for q in _needs(mode)) for i in range(len(study))])
                keep = np.array([i for i in index if mask[i] and has[i]])
                rows_at = np.array([position[int(i)] for i in keep])
                scored = _score(study, keep, {k: v[rows_at] for k, v in probs.items()}, n_boot)
                rows.append({"model": f"study grader, {fusion} fusion", "input": mode, "members": len(use),
                             "samples": subset, "folds": done, **scored})
    return rows


def single_rows(study, data, single_dir: Path, subsets: dict[str, np.ndarray], n_boot: int) -> list[dict]:
    """The single-series grader's out-of-fold grades, matched to the study samples through their series."""
    from lumbarkit.training.grade.train import collect_oof

    probs, index, done = collect_oof(single_dir, data, N_FOLDS, tta=False)
    row_of = {(str(data.series[i]), str(data.level[i])): k for k, i in enumerate(index)}
    rows = []
    for channel, mode in (("T2", "T2"), ("T1", "T1")):
        c = 0 if channel == "T1" else 1
        keep, at = [], []
        for i in range(len(study)):
            series = study.series[i].split("|")[c]
            k = row_of.get((series, str(study.level[i])))
            if series and k is not None:
                keep.append(i)
                at.append(k)
        keep_arr, at_arr = np.array(keep), np.array(at)
        for subset, mask in subsets.items():
            sel = mask[keep_arr]
            scored = _score(study, keep_arr[sel], {k: v[at_arr[sel]] for k, v in probs.items()}, n_boot)
            rows.append({"model": "single-series grader", "input": mode, "members": 1, "samples": subset, "folds": done, **scored})
    return rows


def table(rows: list[dict]) -> str:
    head = ["model", "input", "nets", "samples", "n"] + [name for _, _, name in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], r["input"], str(r["members"]), r["samples"], str(r["n"])]
        for _, _, name in COLUMNS:
            v, ci = r[name]["value"], r[name]["ci95"]
            cells.append("–" if v is None else f"{v:.3f}" + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci and ci[0] is not None else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True)
    parser.add_argument("--cv", action="append", default=[], help="fusion=folder of study_cv folds")
    parser.add_argument("--single", default=None)
    parser.add_argument("--n-boot", type=int, default=500)
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args(argv)
    data = load_grade_dataset(args.cache)
    study = study_dataset(data)
    subsets = {"all with the input": np.ones(len(study), bool), "T1 and T2": study.sequence == "T1+T2"}
    rows = []
    for item in args.cv:
        fusion, folder = item.split("=", 1)
        rows += fusion_rows(study, Path(folder), fusion, subsets, args.n_boot)
    if args.single:
        rows += single_rows(study, data, Path(args.single), subsets, args.n_boot)
    Path(args.out).write_text(json.dumps({"rows": rows, "channel_sources": {k: list(v) for k, v in CHANNEL_SOURCES.items()}},
                                         indent=1) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
