"""Cross-validation summary and model card of the segmentation model folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lumbarkit.training.segment.evaluate import summarise

REPRODUCE = "lumbarkit train segment --data ../shared/data -o MODELDIR --cv"
EXTRA_SECTIONS = (("variants.md", "Variants tried"), ("naming.md", "Level naming benchmark (benchmarks/naming.py)"))


def collect_cv(out: Path, n_folds: int) -> dict | None:
    """Pool the held-out rows of every finished fold (``out/fold{k}.json``)."""
    rows, done = [], []
    for k in range(n_folds):
        path = out / f"fold{k}.json"
        if path.exists():
            rows += [{**r, "fold": k} for r in json.loads(path.read_text())["rows"]]
            done.append(k)
    if not rows:
        return None
    summary = summarise(rows)
    summary["folds_done"] = done
    summary["n_folds"] = n_folds
    return {"summary": summary, "rows": rows}


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def write_card(model_dir: Path, cv: dict | None) -> Path:
    """Store CV metrics in model.json (``metrics.cv``) and write ``MODEL_CARD.md``."""
    meta_path = model_dir / "model.json"
    meta = json.loads(meta_path.read_text())
    if cv is not None:
        meta["metrics"] = {"cv": cv["summary"]}
        (model_dir / "cv_rows.json").write_text(json.dumps(cv["rows"], indent=1, sort_keys=True) + "\n")
    meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    tr = meta["training"]
    lines = [
        f"# Model card: {meta['name']} v{meta['version']}",
        "",
        "2D U-Net (MONAI `UNet`, channels " + ", ".join(map(str, meta["architecture"]["channels"]))
        + ") segmenting sagittal MR slices at " + f"{meta['input']['pixel_mm']} mm/pixel into: " + ", ".join(meta["classes"]) + ".",
        "Inference runs the ONNX export with onnxruntime; `weights.safetensors` holds the torch weights.",
        "Research use only; not a medical device.",
        "",
        "## Training data (../shared/data, public research datasets)",
        "",
        "| source | cases |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in sorted(tr["cases_per_source"].items())],
        "",
        "Partly labelled sources are trained with a marginal cross-entropy (an unlabelled pixel may be any",
        "class its source does not annotate) plus a soft Dice over pixels of known membership. Rows above a",
        "source's top labelled structure are ignored; below its lowest labelled structure (L5, S1 or L5/S1) a",
        "pixel may be anything but a vertebral body; the core of the gap between two adjacent labelled bodies",
        "is a disc target; series of one patient share a fold (see `lumbarkit/training/segment/data.py`).",
        "`spider_masks` (SPIDER mid-sagittal T1, T2 and T2-SPACE slices, whole-vertebra masks) trains a vertebra pixel in",
        "front of the spinal canal as body, one behind it as posterior elements (either within 2 pixels of the canal's",
        "edges), never sacrum above the lowest disc, and leaves the unlabelled sacrum open: below the plane of the lowest",
        "disc a pixel may be anything but a vertebral body. A SPIDER patient's slices and SPACE volume share a fold.",
        f"Recipe: {tr['config']['steps']} steps of batch {tr['config']['batch_size']} random {tr['config']['patch']}-pixel",
        f"patches, AdamW one-cycle lr {tr['config']['lr']}, seed {tr['config']['seed']}; augmentation: affine, bias field, gamma,",
        "histogram shift, intensity scale, blur, noise, contrast inversion (p "
        f"{tr['config'].get('invert_prob', 0)}), simulated lower resolution (p {tr['config'].get('lowres_prob', 0)}).",
        "",
        "## Cross-validated metrics (patient-level folds, held-out cases only)",
        "",
    ]
    if cv is None:
        lines.append("Not computed yet.")
    else:
        s = cv["summary"]
        lines += [
            f"Folds finished: {len(s['folds_done'])} of {s['n_folds']} ({s['n_cases']} held-out cases). "
            "Dice/IoU are computed only on structures a case labels, inside its labelled extent,",
            "on the case's own voxel grid.",
            "",
            "| metric | mean | median | cases |", "|---|---|---|---|",
            *[f"| {m} | {_fmt(v['mean'])} | {_fmt(v['median'])} | {v['n']} |" for m, v in sorted(s["overall"].items())],
            "",
            "Mean per source:",
            "",
            "| source | " + " | ".join(sorted({m for d in s["by_source"].values() for m in d})) + " |",
        ]
        cols = sorted({m for d in s["by_source"].values() for m in d})
        lines.append("|---" * (len(cols) + 1) + "|")
        for src, d in sorted(s["by_source"].items()):
            lines.append(f"| {src} | " + " | ".join(_fmt(d[c]) if c in d else "" for c in cols) + " |")
        lines += _sequence_lines(s)
        lines += _naming_lines(s, cv["rows"])
    for name, title in EXTRA_SECTIONS:  # measured by benchmarks, written beside model.json
        if (model_dir / name).exists():
            lines += ["", f"## {title}", "", (model_dir / name).read_text().strip()]
    lines += ["", "## Reproduce", "", "```bash", REPRODUCE, "```", "",
              "Per-case held-out rows are in `cv_rows.json`.", ""]
    path = model_dir / "MODEL_CARD.md"
    path.write_text("\n".join(lines))
    return path


def _sequence_lines(s: dict) -> list[str]:
    """Card lines: Dice per source and sequence, disc detection and naming on the SPIDER slices."""
    lines: list[str] = []
    if s.get("by_sequence"):
        seq_cols = sorted({m for d in s["by_sequence"].values() for m in d if m.startswith("dice_")})
        lines += ["", "Mean Dice per source and sequence:", "", "| source sequence | " + " | ".join(seq_cols) + " |",
                  "|---" * (len(seq_cols) + 1) + "|"]
        for grp, d in sorted(s["by_sequence"].items()):
            lines.append(f"| {grp} | " + " | ".join(_fmt(d[c]) if c in d else "" for c in seq_cols) + " |")
    if s.get("disc_detection"):
        det = s["disc_detection"]
        lines += ["", f"SPIDER mid-slices ({det['slices']}, held out): every labelled disc found and no extra in "
                  f"{det['all_found_no_extra']:.1%}; {det['body_inside_vertebra']:.1%} of predicted body pixels lie "
                  "inside the true vertebra (mean per slice)."]
    if s.get("naming_by_source"):
        lines += ["", "Level naming per source (every labelled level named right; SPIDER slices: discs counted from the "
                  "bottom, L5/S1 lowest): " + ", ".join(f"{k} {v['cases_all_correct']}/{v['cases']}"
                                                     for k, v in sorted(s["naming_by_source"].items())) + "."]
    return lines


def _naming_lines(s: dict, rows: list[dict]) -> list[str]:
    """Card lines: level naming overall, per fold, and every case with a naming error."""
    lines: list[str] = []
    if "naming" in s:
        n = s["naming"]
        lines += ["", f"Level naming (volumes with level ids and SPIDER slices): every labelled level named correctly in "
                  f"{n['cases_all_correct']}/{n['cases']} cases ({n['case_accuracy']:.1%}); "
                  f"{n['level_accuracy']:.1%} of levels correct."]
        lines += ["", "| fold | volumes all named correctly | body Dice | disc Dice |", "|---|---|---|---|"]
        for k in s["folds_done"]:
            fr = [r for r in rows if r.get("fold") == k]
            named = [r["naming_all_correct"] for r in fr if "naming_all_correct" in r]
            body = [r["dice_vertebral_body"] for r in fr if "dice_vertebral_body" in r]
            disc = [r["dice_disc"] for r in fr if "dice_disc" in r]
            lines.append(f"| {k} | {sum(named)}/{len(named)} | {_fmt(float(np.mean(body))) if body else '-'} | "
                         f"{_fmt(float(np.mean(disc))) if disc else '-'} |")
        misses = [r for r in rows if r.get("naming_all_correct") is False]
        if misses:
            lines += ["", "Cases with a naming error (truth -> predicted):", ""]
            for r in misses:
                wrong = {k: v for k, v in r["naming"].items() if k != v}
                lines.append(f"- {r['case']}: " + ", ".join(f"{k} -> {v}" for k, v in wrong.items()))
    return lines
