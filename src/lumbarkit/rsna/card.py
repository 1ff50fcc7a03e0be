"""MODEL_CARD.md of a trained RSNA severity model, from its ``model.json``."""

from __future__ import annotations

from pathlib import Path


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def write_card(folder: Path, doc: dict) -> Path:
    m = doc.get("metrics", {})
    cv, prior = m.get("cv", {}), m.get("prior_only", {})
    lines = [
        "# RSNA 2024 severity model (lumbarkit)", "",
        f"Trained by `{doc['training']['command']}` on {doc['training']['studies']} studies "
        f"({doc['training']['labelled_rows']} labelled rows). One small CNN (`lumbarkit.nets.rsna.RsnaNet`) grades each "
        f"condition-level crop ({doc['crop_px']} px over {doc['crop_mm']:.0f} mm; canal on sagittal T2/STIR, foramina on "
        "sagittal T1, subarticular zones on axial T2) into normal/mild, moderate, severe; levels come from lumbarkit's "
        "segmentation of the sagittal series. Loss: the competition's sample-weighted log loss plus the any-severe-spinal "
        "term. Rows whose crop cannot be made get the training label prior (stored in model.json).", "",
        f"## Cross-validation ({m.get('folds', 'n/a')} folds by study, out-of-fold)", "",
        "| | score | spinal | foraminal | subarticular | any severe spinal |", "|---|---|---|---|---|---|",
    ]
    for name, s in (("model", cv.get("score", {})), ("label prior only", prior.get("score", {}))):
        lines.append(f"| {name} | {_f(s.get('score'))} | {_f(s.get('spinal'))} | {_f(s.get('foraminal'))} | "
                     f"{_f(s.get('subarticular'))} | {_f(s.get('any_severe_spinal'))} |")
    lines += ["", "| condition | rows | weighted log loss | AUC severe | AUC moderate or worse |", "|---|---|---|---|---|"]
    for c, e in cv.get("conditions", {}).items():
        lines.append(f"| {c} | {e['rows']} | {_f(e['weighted_log_loss'])} | {_f(e['auc_severe'])} | {_f(e['auc_moderate_or_worse'])} |")
    t = m.get("timing", {})
    if t:
        lines += ["", "## Cost on this machine", "",
                  f"Crops: {t['crop_seconds_per_study']:.2f} s per study (stage 1 on the sagittal series, axial geometry); "
                  f"training: {t['train_seconds_per_epoch_per_study'] * 1000:.1f} ms per study per epoch. For the 1,975 "
                  f"RSNA training studies: about {t['estimate_1975_crops_h']:.1f} h of crops once, then "
                  f"{t['estimate_1975_epoch_min']:.1f} min per epoch."]
    lines += ["", "Levels found by the segmentation against the label coordinates (mm):", "",
              "```", str(m.get("level_distance_mm", "not measured")), "```", ""]
    path = Path(folder) / "MODEL_CARD.md"
    path.write_text("\n".join(lines))
    return path
