"""DICOM export of results: a segmentation (DICOM SEG) and a measurement report (TID 1500 SR).

Both objects are derived from the source series the scan was read from (found again by its
SeriesInstanceUID under the source path), so they open in a PACS or viewer next to it:

* :func:`write_dicom_seg` writes a ``highdicom.seg.Segmentation`` (BINARY) with one segment per
  VerSe label present. The label map, on the scan's canonical grid, is mapped back to the grid
  of the file as read (:meth:`~lumbarkit.scan.Scan.to_source_grid`) and every SEG frame is
  matched to its source image by position (ImagePositionPatient on the grid's slice axis), never
  by file or instance order. Orientation, pixel spacing and image size must agree.
* :func:`write_dicom_sr` writes a ``highdicom.sr.Comprehensive3DSR`` holding a TID 1500
  Measurement Report: one measurement group per site (tracking identifier = site), numbers as
  TID 300 measurements with UCUM units, text as coded qualitative evaluations. Concepts without a
  standard code use the local coding scheme ``99LUMBARKIT`` (declared in the Coding Scheme
  Identification Sequence). Sites that are segments of the given SEG reference that segment.

Both carry ``ContentQualification = RESEARCH`` and a "research use" series description:
lumbarkit output is not a diagnosis. The patient and study modules are copied from the source
images (a derived object must belong to the same patient and study). Needs ``highdicom``
(``pip install lumbarkit[dicom]``).

Modules: :mod:`.codes` (coding helpers), :mod:`.source` (the source series and frame matching),
:mod:`.seg`, :mod:`.sr`, and :mod:`.series` (write a volume as a DICOM MR series: the demo's phantom).
"""

from lumbarkit.report.dicom.seg import write_dicom_seg
from lumbarkit.report.dicom.series import (
           ANONYMOUS_PATIENT,
           DEFAULT_TIMES_MS,
           IDENTITY_KEYWORDS,
           write_dicom_series,
)
from lumbarkit.report.dicom.source import source_datasets
from lumbarkit.report.dicom.sr import SRItem, write_dicom_sr

__all__ = ["ANONYMOUS_PATIENT", "DEFAULT_TIMES_MS", "IDENTITY_KEYWORDS", "SRItem", "source_datasets", "write_dicom_seg",
           "write_dicom_series", "write_dicom_sr"]
