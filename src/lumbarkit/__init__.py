"""lumbarkit: automated lumbar spine MRI analysis.

Importing the package does no I/O, downloads nothing and does not import torch.
"""

from lumbarkit.errors import LumbarkitError
from lumbarkit.io.readers import load_scan
from lumbarkit.results.labelmap import LabelMap
from lumbarkit.scan import Scan, ScanMetadata
from lumbarkit.version import __version__


def analyze(source, spacing_mm=None, series=None, config=None, keep_phi=False):
    """Analyse one scan (path or :class:`Scan`) with every stage; returns a :class:`~lumbarkit.results.scan_result.ScanResult`.
    See :func:`lumbarkit.pipeline.analyze`."""
    from lumbarkit.pipeline import analyze as _analyze

    return _analyze(source, spacing_mm=spacing_mm, series=series, config=config, keep_phi=keep_phi)


__all__ = ["__version__", "LumbarkitError", "analyze", "load_scan", "LabelMap", "Scan", "ScanMetadata"]
