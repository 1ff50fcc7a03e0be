"""Options shared by several commands."""

from __future__ import annotations

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

LumbarOption = typer.Option(
    None, "--lumbar-vertebrae", min=4, max=6,
    help="Lumbar vertebrae of this spine when known (4, 5 or 6: transitional anatomy); default: 5 assumed.",
)

ProviderOption = typer.Option(
    None, "--provider", help="Where the networks run: cpu (default), cuda, auto (first accelerator of the installed "
                             "onnxruntime build), rocm, coreml, directml, openvino, tensorrt; a missing one falls back to the CPU.",
)


def require_training_extra() -> None:
    """A one-line error unless torch and MONAI (the ``[train]`` extra) are installed."""
    from lumbarkit.errors import LumbarkitError

    try:
        import monai  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise LumbarkitError("training needs the [train] extra: pip install torch==2.13.0 'lumbarkit[train]'") from None
