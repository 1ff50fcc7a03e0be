"""lumbarkit: automated lumbar spine MRI analysis.

Importing the package does no I/O, downloads nothing and does not import torch.
"""

__version__ = "0.1.0"

from lumbarkit.errors import LumbarkitError  # noqa: E402
from lumbarkit.io.readers import load_scan  # noqa: E402
from lumbarkit.scan import Scan, ScanMetadata, Segmentation  # noqa: E402

__all__ = ["__version__", "LumbarkitError", "load_scan", "Scan", "ScanMetadata", "Segmentation"]
