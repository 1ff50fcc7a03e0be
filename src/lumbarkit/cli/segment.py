"""``lumbarkit segment``: label map with named levels."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lumbarkit.cli.main import app
from lumbarkit.cli.options import (
    LumbarOption,
    OverwriteOption,
    SeriesOption,
    SpacingOption,
    spacing_tuple,
)


def print_levels(levels) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="levels found")
    for col in ("level", "kind", "confidence", "volume (mm3)"):
        table.add_column(col)
    for inst in levels.instances:
        table.add_row(inst.name, inst.kind, f"{inst.confidence:.2f}", f"{inst.volume_mm3:.0f}")
    console = Console()
    console.print(table)
    for w in levels.user_warnings():
        console.print(f"[yellow]warning:[/yellow] {w}")


@app.command()
def segment(
    input: Path = typer.Argument(..., help="DICOM folder/file, NIfTI, MHA/MHD, NRRD or 2D image."),
    out: Path = typer.Option(..., "-o", "--out", help="Output label map (.nii.gz/.mha/.png) or folder."),
    spacing: Optional[tuple[float, float]] = SpacingOption,
    series: Optional[str] = SeriesOption,
    model: Optional[Path] = typer.Option(None, help="Model folder (default: the packaged model)."),
    lumbar_vertebrae: Optional[int] = LumbarOption,
    overwrite: bool = OverwriteOption,
) -> None:
    """Segment bodies, discs and canal, name every level, write the VerSe-id label map."""
    from lumbarkit.cli.progress import StageStatus
    from lumbarkit.pipeline import Pipeline, PipelineConfig
    from lumbarkit.report.labelmap import write_label_map
    from lumbarkit.report.outfolder import check_label_file, check_output, staged_folder
    from lumbarkit.report.outputs import atomic_path

    target = check_label_file(out, overwrite)  # a file, or None for a folder; checked before any work
    if target is None:
        check_output(out, input, overwrite)
    config = PipelineConfig(segment_model=str(model) if model is not None else None, lumbar_vertebrae=lumbar_vertebrae)
    with StageStatus() as status:
        result = Pipeline(config).run(input, until="segment", spacing_mm=spacing_tuple(spacing), series=series,
                                      on_stage=status.update)
    if target is not None:
        with atomic_path(target) as tmp:
            write_label_map(result.scan, result.levels.segmentation.labels, tmp)
        path = target
    else:
        with staged_folder(out, input) as tmp:
            path = out / write_label_map(result.scan, result.levels.segmentation.labels, tmp).name
    print_levels(result.levels)
    typer.echo(f"wrote {path}")
