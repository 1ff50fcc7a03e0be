"""``lumbarkit measure``: vertebral, disc, slip, lordosis and canal measurements of one scan."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lumbarkit.cli.main import app
from lumbarkit.cli.options import (
    OverwriteOption,
    SeriesOption,
    SpacingOption,
    spacing_tuple,
)
from lumbarkit.errors import LumbarkitError, ModelError

NO_SEGMENTATION = "automatic segmentation is not available ({why}); give a label map with --labels LABELMAP"


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
    output: Path = typer.Option(..., "-o", "--out", "--output", help="Folder for vertebrae.csv, measurements.json and qc_measurements.png."),
    overwrite: bool = OverwriteOption,
) -> None:
    """Measure vertebral heights, discs, slips, lordosis and canal diameters (mm, degrees)."""
    from lumbarkit.cli.progress import StageStatus
    from lumbarkit.io import load_scan
    from lumbarkit.io.labelmap import read_label_map
    from lumbarkit.pipeline import Pipeline
    from lumbarkit.report.outfolder import check_output, staged_folder
    from lumbarkit.report.outputs import write_measurements

    check_output(output, input, overwrite)  # before any work
    scan = load_scan(input, spacing_mm=spacing_tuple(spacing), series=series)
    label_map = read_label_map(labels, scan, spacing_tuple(spacing)) if labels is not None else None
    try:
        with StageStatus() as status:
            result = Pipeline().run(scan, until="measure", labels=label_map, on_stage=status.update)
    except ModelError as exc:
        if label_map is not None:
            raise
        raise LumbarkitError(NO_SEGMENTATION.format(why=str(exc))) from None
    with staged_folder(output, input) as tmp:
        paths = {k: output / p.name for k, p in write_measurements(result, tmp).items()}
    for line in _summary_lines(result.measurements):
        typer.echo(line)
    typer.echo(f"wrote {', '.join(str(p) for p in paths.values())}")
