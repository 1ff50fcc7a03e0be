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
    tasks = [t for t in TASKS if t.name in ("pfirrmann", "modic")]  # the table's columns
    labels = {t.name: study.labels[t.name][idx] for t in tasks}
    m = evaluate_grades(tasks, labels, probs, patient_ids=study.patient[idx], n_boot=n_boot)["overall"]
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


def _single_series_probs(study, data, single_dir: Path):
    """The single-series grader's out-of-fold probabilities (task -> (N, C)), per study sample the row of its T1 and
    its T2 crop in them (None: no such crop), and the folds done."""
    from lumbarkit.training.grade.train import collect_oof

    probs, index, done = collect_oof(single_dir, data, N_FOLDS, tta=False)
    row_of = {(str(data.series[i]), str(data.level[i])): k for k, i in enumerate(index)}
    at = [[row_of.get((study.series[i].split("|")[c], str(study.level[i]))) if study.series[i].split("|")[c] else None
           for c in (0, 1)] for i in range(len(study))]
    return probs, at, done


def single_rows(study, data, single_dir: Path, subsets: dict[str, np.ndarray], n_boot: int) -> list[dict]:
    """The single-series grader's out-of-fold grades, matched to the study samples through their series."""
    probs, at, done = _single_series_probs(study, data, single_dir)
    rows = []
    for mode, c in (("T2", 1), ("T1", 0)):
        keep = np.array([i for i in range(len(study)) if at[i][c] is not None])
        rows_at = np.array([at[i][c] for i in keep])
        for subset, mask in subsets.items():
            sel = mask[keep]
            scored = _score(study, keep[sel], {k: v[rows_at[sel]] for k, v in probs.items()}, n_boot)
            rows.append({"model": "single-series grader", "input": mode, "members": 1, "samples": subset, "folds": done, **scored})
    return rows


def decision_fusion_rows(study, data, single_dir: Path, subsets: dict[str, np.ndarray], n_boot: int,
                         t2_weights=(0.5, 0.7, 1.0)) -> list[dict]:
    """Decision-level fusion of the single-series grader: per disc the weighted mean of its probabilities on the
    T2 crop (weight ``w``) and on the T1 crop (``1 - w``); a disc with one sequence takes that one's probabilities."""
    probs, at, done = _single_series_probs(study, data, single_dir)
    keep = np.array([i for i in range(len(study)) if at[i][0] is not None or at[i][1] is not None])
    rows = []
    for w in t2_weights:
        fused = {}
        for t in TASKS:
            p = probs[t.name]
            fused[t.name] = np.stack([
                (w * p[at[i][1]] + (1 - w) * p[at[i][0]]) if at[i][0] is not None and at[i][1] is not None
                else p[at[i][1] if at[i][1] is not None else at[i][0]] for i in keep])
        for subset, mask in subsets.items():
            sel = mask[keep]
            scored = _score(study, keep[sel], {k: v[sel] for k, v in fused.items()}, n_boot)
            rows.append({"model": f"single-series grader, decision fusion (T2 weight {w:g})", "input": "T1+T2", "members": 1,
                         "samples": subset, "folds": done, **scored})
    return rows


def shipped_rows(study, data, cv_dir: Path, single_dir: Path, subsets: dict[str, np.ndarray], n_boot: int) -> list[dict]:
    """What ``analyze`` does: the study grader (every seed) where a disc has T1 and T2, else the single-series
    grader on the one sequence it has."""
    index, arrays, done = oof(cv_dir, N_FOLDS)
    seeds = sorted({k.split("__")[0] for k in arrays})
    position = {int(i): k for k, i in enumerate(index)}
    single, at, _ = _single_series_probs(study, data, single_dir)
    keep, fused = [], {t.name: [] for t in TASKS}
    for i in range(len(study)):
        both = study.sequence[i] == "T1+T2"
        own = at[i][1] if at[i][1] is not None else at[i][0]
        if (both and int(i) not in position) or (not both and own is None):
            continue
        keep.append(i)
        for t in TASKS:
            fused[t.name].append(np.mean([arrays[f"{s}__T1+T2__{t.name}"][position[i]] for s in seeds], axis=0) if both
                                 else single[t.name][own])
    keep_arr = np.array(keep)
    probs = {k: np.stack(v) for k, v in fused.items()}
    rows = []
    for subset, mask in subsets.items():
        sel = mask[keep_arr]
        rows.append({"model": "as shipped: study grader on T1+T2 discs, else the single-series grader", "input": "T1+T2",
                     "members": len(seeds), "samples": subset, "folds": done,
                     **_score(study, keep_arr[sel], {k: v[sel] for k, v in probs.items()}, n_boot)})
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


TARGETS = (("Pfirrmann bacc", 0.68), ("Pfirrmann qwk", 0.80), ("Pfirrmann CCC", 0.80), ("3-class acc", 0.78), ("Modic any bacc", 0.80))
REPRODUCE = """```bash
python -c "from lumbarkit.training.grade.data import build_grade_dataset as b; b('../shared/data/spider', 'runs/grade_cache_v4')"
python -m lumbarkit.training.grade.study_cv --cache runs/grade_cache_v4 -o runs/study_cv/early --fusion early --epochs 16
python -m lumbarkit.training.grade.study_cv --cache runs/grade_cache_v4 -o runs/study_cv/late --fusion late --epochs 16
python -m lumbarkit.training.grade.study_cv --cache runs/grade_cache_v4 -o runs/study_cv/early_expand --fusion early --epochs 12 --seeds 0 --expand
for k in 0 1 2 3 4; do lumbarkit train grade --spider ../shared/data/spider --cache runs/grade_cache_v4 -o runs/single_cv --trunk resnet --loss cb_ce --fold $k; done
python -m lumbarkit.training.grade.study_export --cache runs/grade_cache_v4 --fusion early --epochs 16 --seeds 0 1 --threads 2 \\
    -o src/lumbarkit/models/grade_study
python -m lumbarkit.training.grade.study_card --cache runs/grade_cache_v4 --cv early=runs/study_cv/early --cv late=runs/study_cv/late \\
    --cv early+single=runs/study_cv/early_expand --single runs/single_cv --n-boot 1000 -o runs/study_cv/ablation.json \\
    --model src/lumbarkit/models/grade_study
```"""


def targets_table(row: dict) -> str:
    lines = ["| target | threshold | reached (95 % CI) | met |", "|---|---|---|---|"]
    for name, threshold in TARGETS:
        v, ci = row[name]["value"], row[name]["ci95"]
        text = "–" if v is None else f"{v:.3f}" + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci and ci[0] is not None else "")
        lines.append(f"| {name} | >= {threshold:.2f} | {text} | {'yes' if v is not None and v >= threshold else '**no**'} |")
    return "\n".join(lines)


def write_card(model_dir: Path, rows: list[dict], chosen: dict, text: str) -> Path:
    """``MODEL_CARD.md`` of the shipped study grader: ``text`` (what it is, data, decision), its targets row
    ``chosen`` (a row of ``rows``), the whole ablation and the commands that reproduce it."""
    doc = json.loads((Path(model_dir) / "model.json").read_text())
    parts = [f"# Model card: {doc['name']} v{doc['version']}", "", text.strip(), "",
             f"## Targets (issue 15; cross-validation, {chosen['model']}, discs: {chosen['samples']}, n = {chosen['n']})", "",
             targets_table(chosen), "", "## Ablation (patient-level 5-fold CV, held-out patients only, 95 % patient-bootstrap CIs)", "",
             "CCC is Lin's concordance of the predicted and true Pfirrmann grade (on integer grades it equals the quadratic kappa).",
             "\"T1 and T2\" rows use only the discs whose patient has both sequences (the same discs in every row).", "",
             table(rows), "", "## Reproduce", "", REPRODUCE, ""]
    path = Path(model_dir) / "MODEL_CARD.md"
    path.write_text("\n".join(parts))
    return path


def write_model_metrics(model_dir: Path, doc: dict) -> Path:
    """Record the ablation ``doc`` in the shipped model folder: ``ablation.json``, ``metrics.cv`` of ``model.json``
    (the as-shipped and single-series rows) and ``MODEL_CARD.md``, whose prose (title to targets) is kept."""
    rows = doc["rows"]
    chosen = next(r for r in rows if r["model"].startswith("as shipped") and r["samples"] == "T1 and T2")
    (model_dir / "ablation.json").write_text(json.dumps(doc, indent=1) + "\n")
    meta = json.loads((model_dir / "model.json").read_text())
    meta["metrics"] = {"cv": {"description": "patient-level 5-fold CV, held-out patients, discs with T1 and T2, as analyze grades them",
                              "rows": [r for r in rows if r["model"].startswith(("as shipped", "single-series grader"))]}}
    (model_dir / "model.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    card = (model_dir / "MODEL_CARD.md").read_text()
    prose = card.split("\n", 1)[1].split("\n## Targets", 1)[0]
    return write_card(model_dir, rows, chosen, prose)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True)
    parser.add_argument("--cv", action="append", default=[], help="fusion=folder of study_cv folds")
    parser.add_argument("--single", default=None)
    parser.add_argument("--n-boot", type=int, default=500)
    parser.add_argument("-o", "--out", required=True)
    parser.add_argument("--model", default=None, help="the shipped model folder: write its ablation.json, model.json "
                                                      "metrics and MODEL_CARD.md (keeping the card's prose)")
    args = parser.parse_args(argv)
    data = load_grade_dataset(args.cache)
    study = study_dataset(data)
    subsets = {"all with the input": np.ones(len(study), bool), "T1 and T2": study.sequence == "T1+T2"}
    rows = []
    shipped = dict(item.split("=", 1) for item in args.cv).get("early")
    if args.single and shipped:
        rows += shipped_rows(study, data, Path(shipped), Path(args.single), subsets, args.n_boot)
    for item in args.cv:
        fusion, folder = item.split("=", 1)
        rows += fusion_rows(study, Path(folder), fusion, subsets, args.n_boot)
    if args.single:
        rows += single_rows(study, data, Path(args.single), subsets, args.n_boot)
        rows += decision_fusion_rows(study, data, Path(args.single), subsets, args.n_boot)
    doc = {"rows": rows, "channel_sources": {k: list(v) for k, v in CHANNEL_SOURCES.items()}}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    if args.model:
        write_model_metrics(Path(args.model), doc)
    print(table(rows))


if __name__ == "__main__":
    main()
