"""Cross-validated metrics and the model card of the grader model folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lumbarkit.tasks import TASKS, ldd_index

REPRODUCE = ("lumbarkit train grade --spider ../shared/data/spider --cache runs/grade_cache "
             "--ablation-dir runs/grade_ablation --folds 0 --folds 1 --epochs 12 -o src/lumbarkit/models/grade_2d")
TARGETS = (  # (label, task, metric key, threshold)
    ("Pfirrmann 5-class balanced accuracy", "pfirrmann", "balanced_accuracy", 0.60),
    ("Pfirrmann quadratic kappa", "pfirrmann", "kappa_quadratic", 0.80),
    ("3-class LDD accuracy", "pfirrmann", "ldd_accuracy", 0.80),
    ("Modic any-vs-none balanced accuracy", "modic", "any_balanced_accuracy", 0.75),
)


def cv_metrics(cache, run_dir: str | Path, n_folds: int, tta: bool, n_boot: int = 300) -> dict | None:
    """Full metrics (patient-bootstrap CIs, by level and sequence) of the out-of-fold predictions in ``run_dir``."""
    from lumbarkit.training.grade.data import load_grade_dataset
    from lumbarkit.training.grade.metrics import evaluate_grades
    from lumbarkit.training.grade.train import collect_oof

    data = load_grade_dataset(cache)
    probs, idx, done = collect_oof(run_dir, data, n_folds, tta)
    if not done:
        return None
    res = evaluate_grades(TASKS, {t.name: data.labels[t.name][idx] for t in TASKS}, probs,
                          patient_ids=data.patient[idx],
                          breakdown={"level": data.level[idx], "sequence": data.sequence[idx]}, n_boot=n_boot)
    res["folds_done"] = done
    res["n_folds"] = n_folds
    res["n_discs"] = int(len(idx))
    res["tta"] = bool(tta)
    return res


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _ci(m: dict, task: str, key: str) -> str:
    ci = m["overall"][task].get("ci95", {}).get(key)
    return f" ({_f(ci[0])}-{_f(ci[1])})" if ci else ""


def write_card(model_dir: str | Path, cv: dict | None, ablation_md: str | Path | None = None,
               best: dict | None = None, reproduce: str = REPRODUCE) -> Path:
    """Store the CV metrics in model.json (``metrics.cv``, headline numbers only) and write ``MODEL_CARD.md``
    (``reproduce``: the command that rebuilds the model and its CV)."""
    model_dir = Path(model_dir)
    meta_path = model_dir / "model.json"
    meta = json.loads(meta_path.read_text())
    if cv is not None:
        o = cv["overall"]
        meta["metrics"] = {"cv": {
            "folds_done": cv["folds_done"], "n_folds": cv["n_folds"], "n_discs": cv["n_discs"], "tta": cv["tta"],
            "per_task": {t: {"n": o[t]["n"], **{k: v for k, v in o[t]["metrics"].items()}, "ci95": o[t].get("ci95", {})}
                         for t in o},
            "by": {col: {g: {t: v[t]["metrics"] for t in v} for g, v in groups.items()} for col, groups in cv.get("by", {}).items()},
        }, "selection": best or {}}
        if best:
            meta.setdefault("tta", {})["best_in_cv"] = bool(best.get("tta"))
        (model_dir / "cv_metrics.json").write_text(json.dumps(cv, indent=1, sort_keys=True) + "\n")
    meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    lines = _description(meta) + (_cv_section(cv) if cv is not None else ["Not computed yet."])
    if ablation_md is not None and Path(ablation_md).is_file():
        lines += ["", "## Ablation (the published comparison)", "",
                  *Path(ablation_md).read_text().splitlines()[2:]]
    lines += ["", "## Limitations", "",
              "- Trained and cross-validated on one mid-sagittal slice per series (SPIDER training subset, 4 Dutch hospitals);",
              "  not yet tested on scans from other sites. Labels depend on stage-1 level naming (checked by the pairing rule and a QC montage).",
              "- Thoracic discs (IVD label > 6) are not graded; T12/L1 is graded only when stage 1 names it.",
              "", "## Reproduce", "", f"```\n{reproduce}\n```", ""]
    path = model_dir / "MODEL_CARD.md"
    path.write_text("\n".join(lines))
    return path


def _description(meta: dict) -> list[str]:
    """Card lines: the model, its training data and recipe (from model.json), up to the CV heading."""
    arch, tr = meta["architecture"], meta["training"]
    d = tr["data"]
    lines = [
        f"# Model card: {meta['name']} v{meta['version']}",
        "",
        f"Multi-task disc grader: `{arch['trunk']}` trunk ({meta.get('parameters', 0):,} parameters), one head per task "
        f"({', '.join(t['name'] for t in meta['tasks'])}), trained with the `{tr['config']['loss']}` loss. Input: one "
        f"{meta['crop_spec']['size_mm'][0]:g} x {meta['crop_spec']['size_mm'][1]:g} mm crop per disc on a "
        f"{meta['crop_spec']['shape_px'][0]} x {meta['crop_spec']['shape_px'][1]} grid ({meta['crop_spec']['n_slices']} slice), "
        "disc horizontal, adjacent bodies' median intensity 0.5 (`lumbarkit.stages.s4_crops`).",
        "Inference runs `model.onnx` with onnxruntime (`lumbarkit.stages.s5_grade`, TTA on by default); "
        "`weights.safetensors` holds the torch weights. Research use only; not a medical device.",
        "",
        "## Training data",
        "",
        f"SPIDER training subset (van der Graaf et al. 2024, CC-BY 4.0): one mid-sagittal PNG per series. Discs found by "
        f"the packaged stage-1 model ({d.get('segmentation_model', '')}) and paired with `gradings.csv` by counting from the bottom "
        "(IVD label 1 = L5/S1). A series is paired only when its lowest named disc is L5/S1 and localisation reports no missed disc.",
        "",
        f"- discs: {d['discs']} from {d['series']} series of {d['patients']} patients; by sequence: "
        + ", ".join(f"{k} {v}" for k, v in d["discs_by_sequence"].items()),
        "- by level: " + ", ".join(f"{k} {v}" for k, v in d["discs_by_level"].items()),
        "- series excluded: " + (", ".join(f"{k}: {v}" for k, v in d.get("pairing", {}).get("series_excluded", {}).items()) or "none")
        + f" (of {d.get('pairing', {}).get('series_total', '?')}); kept with the sacrum inferred: "
        f"{d.get('pairing', {}).get('series_kept_sacrum_inferred', '?')}",
        "- class counts: " + "; ".join(f"{k} {v}" for k, v in d["class_counts"].items()),
        "",
        f"Recipe: {tr['config']['epochs']} epochs, batch {tr['config']['batch_size']}, AdamW one-cycle lr {tr['config']['lr']}, "
        f"seed {tr['config']['seed']}, {tr['config'].get('threads', 1)} CPU thread(s) ({tr.get('seconds_per_epoch')} s/epoch); augmentation (MONAI): rotation "
        "+-10 deg, translation, scaling +-10 %, gamma, intensity scale, slice-order flip for stacks.",
        "",
        "## Cross-validated metrics (patient-level folds, held-out patients only)",
        "",
    ]
    return lines


def _cv_section(cv: dict) -> list[str]:
    """Card lines of the cross-validated metrics: targets, per task, by sequence and level."""
    lines: list[str] = []
    o = cv["overall"]
    partial = len(cv["folds_done"]) < cv["n_folds"]
    lines += [
        f"Out-of-fold predictions of the selected configuration, folds {', '.join(map(str, cv['folds_done']))} of a "
        f"{cv['n_folds']}-fold patient-level split ({cv['n_discs']} discs), TTA {'on' if cv['tta'] else 'off'}."
        + (" **Partial CV**: only these folds were run within the CPU budget." if partial else ""),
        "95 % intervals: patient-level bootstrap.",
        "",
        "### Targets",
        "",
        "| target | threshold | reached | met |", "|---|---|---|---|",
    ]
    for label, task, key, thr in TARGETS:
        v = o[task]["metrics"].get(key)
        lines.append(f"| {label} | >= {thr:.2f} | {_f(v)}{_ci(cv, task, key)} | {'yes' if v is not None and v >= thr else '**no**'} |")
    lines += ["", "### Per task", "",
              "| task | n | balanced acc | accuracy | kappa | linear kappa | quadratic kappa | AUC (macro / binary) |",
              "|---|---|---|---|---|---|---|---|"]
    for t in TASKS:
        m = o[t.name]["metrics"]
        lines.append(f"| {t.name} | {o[t.name]['n']} | {_f(m.get('balanced_accuracy'))}{_ci(cv, t.name, 'balanced_accuracy')} | "
                     f"{_f(m.get('accuracy'))} | {_f(m.get('kappa'))} | {_f(m.get('kappa_linear'))} | {_f(m.get('kappa_quadratic'))} | "
                     f"{_f(m.get('auc', m.get('auc_macro')))} |")
    pm = o["pfirrmann"]["metrics"]
    lines += ["", f"Pfirrmann Lin's CCC {_f(pm.get('ccc'))}; 3-class LDD: accuracy {_f(pm.get('ldd_accuracy'))}, balanced "
              f"accuracy {_f(pm.get('ldd_balanced_accuracy'))}, AUC mild-vs-moderate {_f(pm.get('ldd_auc_mild_vs_moderate'))}, "
              f"mild-vs-severe {_f(pm.get('ldd_auc_mild_vs_severe'))}, moderate-vs-severe {_f(pm.get('ldd_auc_moderate_vs_severe'))}.",
              f"Pfirrmann confusion (rows true I-V, columns predicted): `{o['pfirrmann']['confusion']}`.",
              ldd_from_grade_line(o["pfirrmann"]["confusion"]), "",
              "### By sequence and level (Pfirrmann balanced accuracy / Modic any-vs-none balanced accuracy)", "",
              "| group | n | Pfirrmann bacc | Pfirrmann qwk | Modic any bacc |", "|---|---|---|---|---|"]
    for col in ("sequence", "level"):
        for g, v in cv.get("by", {}).get(col, {}).items():
            lines.append(f"| {col} {g} | {v['pfirrmann']['n']} | {_f(v['pfirrmann']['metrics'].get('balanced_accuracy'))} | "
                         f"{_f(v['pfirrmann']['metrics'].get('kappa_quadratic'))} | {_f(v['modic']['metrics'].get('any_balanced_accuracy'))} |")
    return lines


def ldd_from_grade_line(confusion) -> str:
    """Card line: 3-class LDD as inference reports it (the class of the Pfirrmann grade shown), from the confusion."""
    c = np.asarray(confusion, dtype=float)
    to3 = np.array([ldd_index(np.array([i]))[0] for i in range(5)])
    c3 = np.zeros((3, 3))
    for i in range(5):
        for j in range(5):
            c3[to3[i], to3[j]] += c[i, j]
    acc, bacc = np.trace(c3) / c3.sum(), float(np.mean(np.diag(c3) / np.maximum(c3.sum(axis=1), 1)))
    return (f"3-class LDD as `lumbarkit` reports it (the class of the Pfirrmann grade shown, so the two never "
            f"contradict): accuracy {_f(acc)}, balanced accuracy {_f(bacc)}.")
