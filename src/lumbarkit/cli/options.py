"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

SpacingOption = typer.Option(
    None, "--spacing", help="Pixel spacing ROW_MM COL_MM of a 2D image input (required for PNG/JPEG/TIFF).",
)
SeriesOption = typer.Option(
    None, "--series", help="Choose a series of a DICOM study by SeriesInstanceUID or SeriesDescription.",
)


def spacing_tuple(spacing: Optional[tuple[float, float]]) -> Optional[tuple[float, float]]:
    return None if spacing is None or spacing == (None, None) else spacing

OverwriteOption = typer.Option(False, "--overwrite", help="Replace an output folder (or file) that holds the results of "
                                                          "another input or other files; it is replaced whole.")


def is_dicom_input(path: Path) -> bool:
    """A DICOM folder or file (what ``--dicom`` can reference)."""
    from lumbarkit.io.dicom import is_dicom_file

    path = Path(path)
    return path.is_dir() or path.suffix.lower() in (".dcm", ".dicom", ".ima") or (path.is_file() and is_dicom_file(path))
