"""DICOM reading (pydicom) into canonical scans, and a classic MR DICOM series writer.

Reading
-------
``read_dicom`` takes a folder (searched recursively) or one file. Headers are read first
(pixel values deferred) to group images by SeriesInstanceUID and choose one series; only that
series' pixels are decoded. Slices are sorted by ImagePositionPatient projected on the slice
normal (never by file name or InstanceNumber), the LPS affine is built from
ImageOrientationPatient / PixelSpacing / ImagePositionPatient and converted to RAS, and
``Scan.from_array`` reorients the stack to the canonical (Left, Inferior, Posterior) axes.
Classic single-frame images and enhanced multi-frame images (per-frame functional groups)
are supported.

Damaged files are never skipped silently: a file that claims to be DICOM (``DICM`` preamble
or a .dcm/.dicom/.ima name) but cannot be parsed, or an image whose header is cut short (no
pixel data), stops reading even when it is not in the chosen series, because its series
cannot be trusted. A file whose pixel data are truncated is found when its series' pixels are
decoded; an error names it rather than dropping a slice. Non-image DICOM objects (DICOMDIR,
structured reports, presentation states) are ignored.

No identifying attribute (names, ids, dates, institutions) is copied into the Scan.

Modules
-------
This module is the public facade; the code lives in

* :mod:`lumbarkit.io.dicom.headers`: pydicom helpers, file sniffing, per-image header records;
* :mod:`lumbarkit.io.dicom.series`: collecting, grouping and choosing a series, sequence guess;
* :mod:`lumbarkit.io.dicom.read`: slice geometry, pixel decoding, :func:`read_dicom`;
(the DICOM writers, SEG, SR and whole series, live in :mod:`lumbarkit.report.dicom`).
"""

from __future__ import annotations

# The module constants stay importable from here as before (rebinding them here changes nothing).
from lumbarkit.io.dicom.headers import (  # noqa: F401
    COSINE_TOLERANCE,
    LPS_TO_RAS,
    PIXEL_KEYWORDS,
    is_dicom_file,
)
from lumbarkit.io.dicom.read import (  # noqa: F401
    POSITION_TOLERANCE_MM,
    POSITION_TOLERANCE_REL,
    read_dicom,
)
from lumbarkit.io.dicom.series import (  # noqa: F401
    DICOM_SUFFIXES,
    MAX_LISTED,
    SEQUENCE_3D_WORDS,
    guess_sequence,
)

__all__ = ["is_dicom_file", "read_dicom", "guess_sequence"]
