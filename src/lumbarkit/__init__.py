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


def analyze_study(*inputs, series=None, config=None, keep_phi=False):
    """Analyse a study: a DICOM study folder, a BIDS folder, or several series files given together; returns a
    :class:`~lumbarkit.study.result.StudyResult` (each series' result, the level check, one fused grade per disc)."""
    from lumbarkit.pipeline import Pipeline
    from lumbarkit.study import analyze_study as _analyze_study, find_study

    return _analyze_study(find_study(inputs, series), Pipeline(config), keep_phi=keep_phi)


__all__ = ["__version__", "LumbarkitError", "analyze", "analyze_study", "load_scan", "LabelMap", "Scan", "ScanMetadata"]
