"""Write one :class:`~lumbarkit.results.scan_result.ScanResult` to an output folder.

Files: ``result.json``, ``levels.csv``, ``vertebrae.csv``, ``segmentation.nii.gz`` (``.png``
for a 2D image input) on the input's voxel grid, ``qc.png``, ``hotspots/<level>_<task>.png``,
``report.html`` and, on request for DICOM input, ``segmentation.dcm`` (DICOM SEG) and
``report_sr.dcm`` (DICOM SR TID 1500). Every file is written to a temporary name and renamed,
so a killed run never leaves a half-written file under its final name.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from lumbarkit.errors import InputError

TMP_PREFIX = ".lumbarkit-tmp-"


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict], columns) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return write_text(path, buf.getvalue())


def result_json(result, keep_phi: bool = False) -> str:
    """The ``result.json`` text: sorted keys, no timestamps or paths (byte-identical on rerun)."""
    return json.dumps(result.to_dict(keep_phi), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def hotspot_name(level: str, task: str) -> str:
    return f"{level.replace('/', '-')}_{task}.png"


def grade_note(g) -> str:
    """Short grade text for the QC image: ``Pf3 M0``."""
    parts = []
    if "pfirrmann" in g.grades:
        parts.append(f"Pf{g.grades['pfirrmann']}")
    if "modic" in g.grades:
        parts.append(f"M{g.grades['modic']}")
    return " ".join(parts)


def write_outputs(result, outdir: Path, keep_phi: bool = False, dicom_source: Path | None = None,
                  report_extra=None, viewer_series=(), crop_pairs: dict | None = None) -> dict[str, Path]:
    """Write every output file of ``result`` into ``outdir``; returns {kind: path}.

    ``dicom_source`` (the DICOM input path) also writes a DICOM SEG and SR referencing it. ``report_extra``
    (a callable ``outdir -> html``) adds sections to ``report.html`` (a study's series and crops).
    """
    from lumbarkit.report.html import render_report
    from lumbarkit.report.labelmap import write_label_map
    from lumbarkit.report.qc_measure import draw_measurements
    from lumbarkit.results.measurements import CSV_COLUMNS as VERTEBRA_COLUMNS

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    scan, labels = result.scan, result.levels.segmentation.labels
    paths: dict[str, Path] = {}
    paths["result"] = write_text(outdir / "result.json", result_json(result, keep_phi))
    paths["levels"] = write_levels_csv(result, outdir / "levels.csv")
    paths["vertebrae"] = write_csv(outdir / "vertebrae.csv", result.vertebrae_rows(), VERTEBRA_COLUMNS)
    seg_name = "segmentation.png" if scan.metadata.source_format == "image" else "segmentation.nii.gz"
    with atomic_path(outdir / seg_name) as tmp:
        write_label_map(scan, labels, tmp)
    paths["segmentation"] = outdir / seg_name
    notes = {g.level: grade_note(g) for g in result.grades.discs} if result.grades is not None else None
    with atomic_path(outdir / "qc.png") as tmp:
        draw_measurements(scan, result.measurements, tmp, labels=labels, disc_notes=notes)
    paths["qc"] = outdir / "qc.png"
    hotspot_files = write_hotspots(result, outdir)
    if dicom_source is not None:
        paths.update(_write_dicom(result, outdir, dicom_source))
    extra = report_extra(outdir) if report_extra is not None else ""
    paths["report"] = write_text(outdir / "report.html", render_report(result, outdir, hotspot_files, keep_phi, extra,
                                                                     viewer_series, crop_pairs))
    return paths


def write_measurements(result, outdir: Path) -> dict[str, Path]:
    """``lumbarkit measure`` outputs: ``vertebrae.csv``, ``measurements.json`` and ``qc_measurements.png``."""
    from lumbarkit.report.qc_measure import draw_measurements
    from lumbarkit.results.measurements import CSV_COLUMNS as VERTEBRA_COLUMNS

    outdir = Path(outdir)
    paths = {"vertebrae": write_csv(outdir / "vertebrae.csv", result.vertebrae_rows(), VERTEBRA_COLUMNS),
             "measurements": write_text(outdir / "measurements.json",
                                        json.dumps(result.measurements.to_dict(), indent=1, sort_keys=True))}
    with atomic_path(outdir / "qc_measurements.png") as tmp:
        draw_measurements(result.scan, result.measurements, tmp, labels=result.levels.segmentation.labels)
    paths["qc"] = outdir / "qc_measurements.png"
    return paths


def write_levels_csv(result, path: Path) -> Path:
    """``levels.csv``: one row per disc (grades, naming confidence, disc measurements); the one format."""
    from lumbarkit.results.scan_result import levels_csv_columns

    return write_csv(Path(path), result.levels_rows(), levels_csv_columns())


def write_hotspots(result, outdir: Path) -> list[Path]:
    """``hotspots/<level>_<task>.png``: each evidence map over its crop, top to bottom, then by task."""
    from lumbarkit.report.hotspot_png import overlay_png

    if not result.hotspots:
        return []
    crops = {c.name: c for c in result.crops.crops}
    order = {name: i for i, name in enumerate(crops)}
    files = []
    for (level, task), heat in sorted(result.hotspots.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        path = Path(outdir) / "hotspots" / hotspot_name(level, task)
        with atomic_path(path) as tmp:
            overlay_png(crops[level].image, heat, tmp, title=f"{level} {task}")
        files.append(path)
    return files


def segment_names(labels) -> dict[int, str]:
    """Names of the label ids present in a VerSe label map."""
    import numpy as np

    from lumbarkit.levels import CANAL_ID, VERTEBRA_NAMES, lumbar_count_of

    names = {}
    present = [int(x) for x in np.unique(labels) if x]
    lumbar = lumbar_count_of(v for v in present if v in VERTEBRA_NAMES or v - 100 in VERTEBRA_NAMES)
    for v in present:
        if v == CANAL_ID:
            names[v] = "spinal canal"
        elif v in VERTEBRA_NAMES:
            names[v] = f"{VERTEBRA_NAMES[v]} vertebral body" if VERTEBRA_NAMES[v] != "S1" else "sacrum (S1)"
        elif v > 100 and (v - 100) in VERTEBRA_NAMES:
            from lumbarkit.levels import disc_name

            names[v] = f"{disc_name(VERTEBRA_NAMES[v - 100], lumbar)} intervertebral disc"
    return names


SR_GRADE_NAMES = {"pfirrmann": "Pfirrmann grade", "modic": "Modic change", "endplate_upper": "upper endplate defect",
                  "endplate_lower": "lower endplate defect", "spondylolisthesis": "spondylolisthesis", "herniation": "disc herniation",
                  "narrowing": "disc narrowing", "bulging": "disc bulging"}


def grade_text(task: str, value: int) -> str:
    """A graded value as a reader says it (the SR's code meaning): "Pfirrmann grade III", "Modic type 1", "present"."""
    from lumbarkit.tasks import get_task

    t = get_task(task)
    name = t.class_names[t.classes.index(int(value))]
    if task == "pfirrmann":
        return f"Pfirrmann grade {name}"
    if task == "modic":
        return "no Modic change" if name == "none" else f"Modic {name}"
    return name


def sr_items(result) -> list:
    """The measurements and grades of ``result`` as DICOM SR items (site, name, value, unit)."""
    from lumbarkit.report.dicom import SRItem

    units = {"mm": "mm", "deg": "deg", "%": "%", "ratio": "1", "grade": "1"}
    items = []
    for v in result.measurements.vertebrae:
        for m in v.measures():
            if m.ok:
                items.append(SRItem(v.name, m.name.replace("_", " "), round(float(m.value), 3), units.get(m.unit, "1")))
    for d in result.measurements.discs:
        for m in d.measures():
            if m.ok:
                items.append(SRItem(d.name, m.name.replace("_", " "), round(float(m.value), 3), units.get(m.unit, "1")))
    if result.grades is not None:
        for g in result.grades.discs:
            for task, value in sorted(g.grades.items()):
                items.append(SRItem(g.level, SR_GRADE_NAMES.get(task, task.replace("_", " ")), grade_text(task, value)))
            if g.ldd:
                items.append(SRItem(g.level, "disc degeneration (3 classes)", g.ldd))
    lordosis = result.measurements.lordosis
    if lordosis.ok:
        items.append(SRItem("lumbar spine", "lordosis", round(float(lordosis.value), 3), "deg"))
    return items


def _write_dicom(result, outdir: Path, source: Path) -> dict[str, Path]:
    if result.scan.metadata.source_format != "dicom":
        raise InputError("--dicom needs a DICOM input (the SEG and SR reference its series)")
    try:
        from lumbarkit.report.dicom import write_dicom_seg, write_dicom_sr
    except ImportError:
        raise InputError("--dicom needs the [dicom] extra: pip install 'lumbarkit[dicom]'") from None
    labels = result.levels.segmentation.labels
    with atomic_path(outdir / "segmentation.dcm") as tmp:
        write_dicom_seg(result.scan, labels, source, tmp, segment_names(labels))
    with atomic_path(outdir / "report_sr.dcm") as tmp:
        write_dicom_sr(result.scan, sr_items(result), source, tmp, seg_path=outdir / "segmentation.dcm")
    return {"dicom_seg": outdir / "segmentation.dcm", "dicom_sr": outdir / "report_sr.dcm"}


__all__ = ["atomic_path", "write_outputs", "result_json", "hotspot_name", "segment_names", "sr_items"]
