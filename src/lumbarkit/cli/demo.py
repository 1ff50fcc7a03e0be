"""``lumbarkit demo``: write a synthetic lumbar-spine phantom as DICOM and analyse it end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from lumbarkit.cli.main import app


@app.command()
def demo(
    output: Path = typer.Option(..., "-o", "--out", "--output", help="Folder for the demo files (created if missing)."),
    sequence: str = typer.Option("T2", "--sequence", help="Phantom contrast: T2 or T1."),
    seed: int = typer.Option(0, "--seed", help="Noise seed of the phantom."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier demo's phantom_dicom folder in OUTPUT."),
) -> None:
    """Analyse a synthetic phantom DICOM series end to end (no data or download needed); prints the report path."""
    from lumbarkit.cli.info import print_scan
    from lumbarkit.errors import InputError
    from lumbarkit.io import load_scan
    from lumbarkit.phantom import make_phantom, write_phantom

    if sequence not in ("T1", "T2"):
        raise InputError(f"--sequence must be T1 or T2, got {sequence!r}")
    series_dir = output / "phantom_dicom"
    if series_dir.exists() and any(series_dir.iterdir()):
        if not overwrite:
            raise InputError(f"{series_dir} already holds files: choose another --output or add --overwrite")
        shutil.rmtree(series_dir)
    phantom = make_phantom(sequence=sequence, seed=seed, lordosis_deg=50.0, tilt_deg=15.0, shape_rc=(400, 320))
    files = write_phantom(phantom, output, fmt="dicom", name="phantom")
    typer.echo(f"wrote a synthetic {sequence} lumbar phantom: {files['image']} (labels: {files['label']})")
    scan = load_scan(files["image"])
    print_scan(scan, f"{files['image'].name} (read back)")
    from lumbarkit.cli.analyze import print_summary
    from lumbarkit.pipeline import Pipeline
    from lumbarkit.report.outfolder import staged_folder
    from lumbarkit.report.outputs import write_outputs

    result = Pipeline().analyze(files["image"])
    with staged_folder(output / "analysis", files["image"]) as tmp:  # the previous demo's analysis is replaced whole
        paths = write_outputs(result, tmp)
    print_summary(result, output / "analysis")
    typer.echo(f"report: {output / 'analysis' / paths['report'].name}")
