"""Write a :class:`~lumbarkit.study.result.StudyResult` to an output folder.

A study of one series writes exactly what :func:`~lumbarkit.report.outputs.write_outputs` writes for it.
With several series: each series' own outputs go under ``series/<n>_<sequence>/``; the top level holds
the study's ``result.json`` and ``levels.csv`` (fused grades, ``sequences``), the primary series'
label map, QC image and vertebra table, ``crops/<level>.png`` (the disc's T1 and T2 crops side by side,
as the study grader saw them), ``hotspots/`` (occlusion evidence of the fused grades, over the T2 crop)
and a ``report.html`` with the fused grades, the crops, the evidence maps and links to every series' report. With ``--dicom`` every DICOM series gets its SEG and SR in its folder, and the
top level's SR holds the fused grades.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape
from pathlib import Path

import numpy as np

from lumbarkit.report.outputs import atomic_path, result_json, write_csv, write_outputs, write_text


def write_study_outputs(study, outdir: Path, keep_phi: bool = False, dicom: bool = False) -> dict[str, Path]:
    """Write every output of ``study`` into ``outdir``; returns {kind: path} of the top-level files."""
    outdir = Path(outdir)
    if study.single:
        ref = study.refs[0]
        extra = (lambda folder: rsna_section(study)) if study.rsna is not None else None
        paths = write_outputs(study.results[0], outdir, keep_phi=keep_phi, dicom_source=ref.source if dicom else None,
                              report_extra=extra)
        if study.rsna is not None:
            paths["result"] = write_text(outdir / "result.json", result_json(study, keep_phi))
            paths["levels"] = write_csv(outdir / "levels.csv", study.levels_rows(), study.levels_columns())
        return paths
    for i in study.analysed:
        ref = study.refs[i]
        dicom_source = ref.source if dicom and study.results[i].scan.metadata.source_format == "dicom" else None
        write_outputs(study.results[i], outdir / study.folder(i), keep_phi=keep_phi, dicom_source=dicom_source)
    pairs = write_crop_pairs(study, outdir / "crops")
    primary = study.primary_result
    fused = study.fused.grades if study.fused is not None else None
    crops = {c.name for c in primary.crops.crops} if primary.crops is not None else set()
    maps = {key: m for key, m in (study.fused.hotspots if study.fused is not None else {}).items() if key[0] in crops}
    top = replace(primary, grades=fused, hotspots=maps, warnings=study.warnings, models=primary.models + study.models)
    ref = study.refs[study.primary]
    dicom_source = ref.source if dicom and primary.scan.metadata.source_format == "dicom" else None
    others = [(f"{study.sequence_of(i)} (series {i + 1})", study.results[i]) for i in study.analysed if i != study.primary]
    paths = write_outputs(top, outdir, keep_phi=keep_phi, dicom_source=dicom_source,
                          report_extra=lambda folder: study_sections(study, folder, pairs) + rsna_section(study),
                          viewer_series=others, crop_pairs=pairs)
    paths["result"] = write_text(outdir / "result.json", result_json(study, keep_phi))
    paths["levels"] = write_csv(outdir / "levels.csv", study.levels_rows(), study.levels_columns())
    return paths


def write_crop_pairs(study, folder: Path) -> dict[str, Path]:
    """``crops/<level>.png``: per fused disc the crops of the series that filled each channel, side by side."""
    import imageio.v3 as iio

    if study.fused is None:
        return {}
    per_channel = {}
    for channel, i in sorted(study.fused.series_used.items()):
        crops = study.results[i].crops  # cut with the crop spec the study grader shares (None: not graded)
        per_channel[channel] = {c.name: c.image[c.image.shape[0] // 2] for c in (crops.crops if crops is not None else ())}
    out = {}
    for name in study.fused.sequences:
        tiles = [per_channel[ch].get(name) for ch in sorted(per_channel)]
        tiles = [t for t in tiles if t is not None]
        if not tiles:
            continue
        gap = np.ones((tiles[0].shape[0], 4))
        strip = np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1)
        image = np.kron((np.clip(strip, 0, 1) * 255).astype(np.uint8), np.ones((2, 2), np.uint8))  # 2x, nearest
        path = folder / f"{name.replace('/', '-')}.png"
        with atomic_path(path) as tmp:
            iio.imwrite(tmp, image, extension=".png")
        out[name] = path
    return out


def study_sections(study, outdir: Path, crops: dict[str, Path]) -> str:
    """HTML sections of a study report: the series analysed (linked) and each fused disc's crops."""
    from lumbarkit.report.html import img_tag

    rows = []
    for i, ref in enumerate(study.refs):
        r = study.results[i]
        link = f"<a href='{escape(study.folder(i))}/report.html'>{escape(study.folder(i))}</a>" if r is not None else escape(study.folder(i))
        status = "analysed" if r is not None else f"failed: {escape(study.errors.get(i, ''))}"
        discs = ", ".join(d.name for d in r.levels.discs) if r is not None else ""
        rows.append(f"<tr><td>{link}</td><td>{escape(study.sequence_of(i))}</td><td>{status}</td><td>{escape(discs)}</td></tr>")
    table = "<table><tr><th>series</th><th>sequence</th><th>status</th><th>discs</th></tr>" + "".join(rows) + "</table>"
    fused_by = escape(study.fused.model) if study.fused is not None else "not graded"
    figs = ""
    if crops:
        order = sorted(crops)
        figs = "<div class='hot'>" + "".join(
            f"<figure>{img_tag(crops[n], n)}<figcaption>{escape(n)} · {escape(study.fused.sequences.get(n, ''))}</figcaption></figure>"
            for n in order) + "</div>"
    return (f"<section><h2>Study</h2><p class='muted'>Grades fused by the {fused_by} from the channels shown "
            f"(T1 left, T2 right where both exist).</p>{table}{figs}</section>")


def rsna_section(study) -> str:
    """HTML table of the RSNA severities per level and condition (P(severe) beside each), or nothing."""
    if study.rsna is None:
        return ""
    from lumbarkit.rsna.format import CONDITIONS, DISC_NAMES, LEVELS

    head = "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in CONDITIONS)
    rows = []
    for lv in LEVELS:
        cells = "".join(f"<td>{escape(study.rsna.severity(c, lv))} ({study.rsna.of(c, lv)[2]:.2f})</td>" for c in CONDITIONS)
        rows.append(f"<tr><td>{escape(DISC_NAMES[lv])}</td>{cells}</tr>")
    notes = "".join(f"<li>{escape(n)}</li>" for n in study.rsna.notes)
    return (f"<section><h2>RSNA 2024 severities</h2><p class='muted'>{escape(study.rsna.model)}: severity (P severe) per "
            f"level; rows without a crop take the model's prior.</p><table><tr><th>level</th>{head}</tr>{''.join(rows)}</table>"
            f"<ul class='warn'>{notes}</ul></section>")
