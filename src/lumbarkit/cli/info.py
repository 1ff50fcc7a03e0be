"""``lumbarkit info``: what lumbarkit reads from an input."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lumbarkit.cli.main import app
from lumbarkit.cli.options import SeriesOption, SpacingOption, spacing_tuple


def describe_scan(scan) -> dict[str, str]:
    """Human-readable facts about a scan (no identifiers)."""
    meta = scan.metadata
    rows = {
        "shape (slices, rows, cols)": " x ".join(str(s) for s in scan.shape),
        "spacing (slices, rows, cols)": " x ".join(f"{s:.4g}" for s in scan.spacing_mm) + " mm",
        "orientation": f"{scan.orientation} (array axes towards Left, Inferior, Posterior)",
        "format": meta.source_format or "?",
        "sequence": meta.sequence,
    }
    if meta.series_description:
        rows["series"] = meta.series_description
    if meta.series_uid:
        rows["series uid"] = meta.series_uid
    if meta.manufacturer:
        rows["manufacturer"] = meta.manufacturer
    if meta.field_strength_t:
        rows["field strength"] = f"{meta.field_strength_t:g} T"
    return rows


def print_scan(scan, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("value", overflow="fold")  # a series UID is never cut: --series needs all of it
    for key, value in describe_scan(scan).items():
        table.add_row(key, value)
    Console().print(table)


@app.command()
def info(
    input: Path = typer.Argument(..., help="DICOM folder/file, NIfTI, MHA/MHD, NRRD or 2D image."),
    spacing: Optional[tuple[float, float]] = SpacingOption,
    series: Optional[str] = SeriesOption,
) -> None:
    """Print shape, spacing, orientation, chosen series and sequence of INPUT."""
    from lumbarkit.io import load_scan

    scan = load_scan(input, spacing_mm=spacing_tuple(spacing), series=series)
    print_scan(scan, str(input.name))
    if input.is_dir():
        print_series(input, scan.metadata.series_uid)


def print_series(folder: Path, chosen_uid: str | None) -> None:
    """Every DICOM series under ``folder`` (full UID, description, plane, sequence, images), the chosen one marked."""
    from rich.console import Console
    from rich.table import Table

    from lumbarkit.io.dicom.series import collect_frames, group_series

    frames, _ = collect_frames(folder)
    table = Table(title="series in this study (choose one with --series UID or a part of its description)")
    for col in ("", "series UID", "description", "plane", "sequence", "images"):
        table.add_column(col, overflow="fold")
    for s in group_series(frames):
        table.add_row("*" if s.uid == chosen_uid else "", s.uid, s.description, s.plane, s.sequence, str(len(s.frames)))
    Console().print(table)
