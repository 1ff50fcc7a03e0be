"""Codes and helpers shared by the DICOM writers: highdicom import, SNOMED CT / UCUM / local codes, LO text."""

from __future__ import annotations

import contextlib
import re
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    pass




MANUFACTURER = "lumbarkit"


RESEARCH_NOTE = "research use, not a diagnosis"


SEG_SERIES_DESCRIPTION = "lumbarkit SEG (research use)"


SR_SERIES_SUFFIX = " - lumbarkit (research use)"


SEG_SERIES_NUMBER = 9001


SR_SERIES_NUMBER = 9002


LOCAL_SCHEME = "99LUMBARKIT"


SEGMENTATION_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage",
}


UCUM_MEANINGS = {
    "mm": "millimeter", "cm": "centimeter", "mm2": "square millimeter", "mm3": "cubic millimeter",
    "ml": "milliliter", "mL": "milliliter", "deg": "degree", "%": "percent", "1": "no units", "s": "second", "ms": "millisecond",
}


def import_highdicom() -> Any:
    try:
        import highdicom
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("DICOM SEG/SR export needs highdicom: pip install 'lumbarkit[dicom]'") from exc
    return highdicom


@contextlib.contextmanager
def quiet_names():
    """Silence highdicom's warning about one-component person names copied from the source (e.g. "ANON")."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name.*", category=UserWarning)
        yield


def software_version() -> str:
    from lumbarkit.version import __version__

    return __version__


def lo_text(text: str) -> str:
    """A value that fits a DICOM LO (64 characters, no backslash)."""
    return " ".join(str(text).replace("\\", "/").split())[:64]


def _code_value(text: str) -> str:
    """A stable local code value for free text: upper-case words joined by '_' (long ones become LongCodeValue)."""
    slug = re.sub(r"[^A-Z0-9]+", "_", str(text).upper()).strip("_")
    if slug:
        return slug
    import hashlib

    return "LK" + hashlib.sha1(str(text).encode("utf-8")).hexdigest()[:10].upper()


def local_code(text: str) -> Any:
    from highdicom.sr import CodedConcept

    return CodedConcept(value=_code_value(text), scheme_designator=LOCAL_SCHEME, meaning=lo_text(text) or "unnamed")


def local_scheme() -> Any:
    from highdicom.coding_schemes import CodingSchemeIdentificationItem

    return CodingSchemeIdentificationItem(
        designator=LOCAL_SCHEME, name="lumbarkit local concepts", responsible_organization="lumbarkit project",
    )


def snomed_site_code(site: str) -> Any | None:
    """Standard (SNOMED CT) code of a vertebra, disc or the canal named as in :mod:`lumbarkit.levels`, else None."""
    from pydicom.sr.codedict import codes

    text = site.strip()
    if text.lower() in ("canal", "spinal canal", "vertebral canal"):
        return codes.SCT.VertebralCanal
    if text.lower() in ("lumbar spine", "lumbar"):
        return codes.SCT.LumbarSpine
    if text.upper() == "S1":
        return codes.SCT.Sacrum  # the S1 body-like block; no S1-vertebra code in pydicom's dictionary
    keyword = text.upper().replace("/", "") + ("Disc" if "/" in text else "Vertebra")
    try:
        return getattr(codes.SCT, keyword)
    except AttributeError:
        return None


def label_code(label: int, lumbar: int = 5) -> Any:
    """SNOMED CT code of a VerSe label id in a spine of ``lumbar`` lumbar vertebrae (124 is L5/L6 when there are six)."""
    from lumbarkit.levels import label_name

    try:
        name = label_name(int(label), lumbar)
    except ValueError:
        return None
    return snomed_site_code(name)


def ucum_code(unit: str | None) -> Any:
    from highdicom.sr import CodedConcept

    unit = "1" if unit in (None, "") else str(unit)
    return CodedConcept(value=unit, scheme_designator="UCUM", meaning=UCUM_MEANINGS.get(unit, unit))
