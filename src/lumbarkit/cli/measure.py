"""``lumbarkit measure``: vertebral, disc, slip, lordosis and canal measurements of one scan."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lumbarkit.cli.main import app
from lumbarkit.cli.options import SeriesOption, SpacingOption, spacing_tuple
from lumbarkit.errors import InputError, LumbarkitError, ModelError

NO_SEGMENTATION = "automatic segmentation is not available yet ({why}); give a label map with --labels LABELMAP"


def read_label_map(path: Path, scan, spacing_mm=None):
    """Read a VerSe label map on ``scan``'s grid: a NIfTI/MHA/NRRD volume, or a PNG for a 2D image.

    Raises
    ------
    InputError : unreadable, not integer, or on another grid than the scan.
    """
    import numpy as np

    from lumbarkit.io.readers import IMAGE_SUFFIXES, VOLUME_SUFFIXES, load_scan

    if not path.exists():
        raise InputError(f"label map not found: {path}")
    name = path.name.lower()
    if name.endswith(IMAGE_SUFFIXES):
        import imageio.v3 as iio

        try:
            pixels = np.asarray(iio.imread(path))
        except Exception as exc:
            raise InputError(f"cannot read label image {path.name}: {type(exc).__name__}") from None
        if pixels.ndim == 3 and pixels.shape[-1] in (2, 3, 4) and np.all(pixels[..., :3] == pixels[..., :1]):
            pixels = pixels[..., 0]
        if pixels.ndim != 2:
            raise InputError(f"label image {path.name} has shape {pixels.shape}; expected one gray image of label ids")
        if (1,) + pixels.shape != scan.shape:
            raise InputError(f"label image {path.name} is {pixels.shape[0]}x{pixels.shape[1]}; the input is {scan.shape[1]}x{scan.shape[2]}")
        return pixels[None].astype(np.int32)
    if not name.endswith(VOLUME_SUFFIXES):
        raise InputError(f"unsupported label map {path.name}: expected .nii/.nii.gz, .mha/.mhd, .nrrd or (for 2D input) .png")
    label_scan = load_scan(path, spacing_mm=spacing_mm)
    if label_scan.shape != scan.shape:
        raise InputError(f"label map {path.name} has shape {label_scan.shape} on the canonical grid; the input has {scan.shape}")
    corners = np.array([[k, i, j] for k in (0, scan.shape[0] - 1) for i in (0, scan.shape[1] - 1) for j in (0, scan.shape[2] - 1)])
    drift = float(np.abs(scan.voxel_to_mm(corners) - label_scan.voxel_to_mm(corners)).max())
    if drift > 0.1 * min(scan.spacing_mm):
        raise InputError(f"label map {path.name} is not on the input's grid (its voxels are up to {drift:.2g} mm away)")
    values = label_scan.array
    if np.any(values != np.round(values)):
        raise InputError(f"label map {path.name} holds non-integer values: expected VerSe label ids")
    return np.round(values).astype(np.int32)


def _segment_labels(scan):
    """VerSe label map from the segmentation + level-naming stages, when they are available."""
    try:
        from lumbarkit.stages.s2_localize import localize
        from lumbarkit.stages.s1_segment import segment
    except ImportError:
        raise LumbarkitError(NO_SEGMENTATION.format(why="no segmentation stage in this build")) from None
    try:
        semantic = segment(scan)
    except ModelError as exc:
        raise LumbarkitError(NO_SEGMENTATION.format(why=str(exc))) from None
    return localize(scan, semantic.probabilities).segmentation.labels


def _summary_lines(m) -> list[str]:
    lines = []
    discs = {d.upper: d for d in m.discs}
    for v in m.vertebrae:
        if v.height_anterior.ok:
            text = (f"{v.name:4s} Ha/Hm/Hp {v.height_anterior.value:5.1f}/{v.height_middle.value:5.1f}/"
                    f"{v.height_posterior.value:5.1f} mm")
            if v.genant_grade.ok:
                text += f"  loss {v.height_loss.value:4.1f}%  Genant {int(v.genant_grade.value)}"
        else:
            text = f"{v.name:4s} not measured: {v.height_anterior.missing_reason}"
        d = discs.get(v.name)
        if d is not None and d.slip_percent.ok:
            text += f"  | {d.name} slip {d.slip_percent.value:+.0f}% (Meyerding {int(d.meyerding_grade.value)})"
        lines.append(text)
    if m.lordosis.ok:
        lines.append(f"lumbar lordosis {m.lordosis_method}: {m.lordosis.value:.1f} deg")
    return lines


@app.command("measure")
def measure_command(
    input: Path = typer.Argument(..., help="DICOM folder/file, NIfTI, MHA/MHD, NRRD or 2D image."),
    labels: Optional[Path] = typer.Option(
        None, "--labels", help="Label map with VerSe ids on INPUT's grid (NIfTI/MHA/NRRD; a PNG for a 2D PNG input) to measure instead of segmenting.",
    ),
    spacing: Optional[tuple[float, float]] = SpacingOption,
    series: Optional[str] = SeriesOption,
    output: Path = typer.Option(..., "--output", "-o", help="Folder for vertebrae.csv, measurements.json and qc_measurements.png."),
) -> None:
    """Measure vertebral heights, discs, slips, lordosis and canal diameters (mm, degrees)."""
    import csv
    import json

    from lumbarkit.io import load_scan
    from lumbarkit.report.qc_measure import draw_measurements
    from lumbarkit.stages.s3_measure import CSV_COLUMNS, measure

    scan = load_scan(input, spacing_mm=spacing_tuple(spacing), series=series)
    label_map = read_label_map(labels, scan, spacing_tuple(spacing)) if labels is not None else _segment_labels(scan)
    result = measure(scan, label_map)
    output.mkdir(parents=True, exist_ok=True)
    with open(output / "vertebrae.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(result.to_rows())
    with open(output / "measurements.json", "w") as fh:
        json.dump(result.to_dict(), fh, indent=1, sort_keys=True)
    draw_measurements(scan, result, output / "qc_measurements.png", labels=label_map)
    for line in _summary_lines(result):
        typer.echo(line)
    typer.echo(f"wrote {output / 'vertebrae.csv'}, {output / 'measurements.json'} and {output / 'qc_measurements.png'}")
