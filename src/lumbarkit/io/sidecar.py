"""BIDS / dcm2niix JSON sidecars and BIDS suffixes: the acquisition facts a NIfTI file does not carry.

``dcm2niix -b y`` writes ``<stem>.json`` beside ``<stem>.nii.gz`` with the DICOM tags a reader needs to
tell the sequence (SeriesDescription, EchoTime, RepetitionTime, InversionTime in **seconds**,
ScanningSequence, MRAcquisitionType), MagneticFieldStrength (T) and Manufacturer. They are read with
the rules DICOM tags get (:func:`lumbarkit.io.dicom.series.guess_sequence`, times converted to ms). A
BIDS suffix (``_T1w``, ``_T2w``, ``_STIR``) names the contrast explicitly and wins over the guess; a
disagreement between the two is a note. Only the keys in :data:`ACQUISITION_KEYS` are read for
analysis: identifiers a sidecar may hold (InstitutionName, PatientName, ...) reach no output unless
``--keep-phi`` (see :data:`IDENTIFIER_KEYS`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lumbarkit.errors import InputError

ACQUISITION_KEYS = ("SeriesDescription", "ProtocolName", "EchoTime", "RepetitionTime", "InversionTime",
                    "MRAcquisitionType", "ScanningSequence", "MagneticFieldStrength", "Manufacturer",
                    "SliceThickness", "SpacingBetweenSlices")
IDENTIFIER_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "AcquisitionDateTime", "StudyDate",
                   "AccessionNumber", "InstitutionName", "StudyInstanceUID", "SeriesInstanceUID")
BIDS_SUFFIX_SEQUENCE = {"T1w": "T1", "T2w": "T2", "STIR": "STIR", "T2starw": "T2STAR", "PDw": "PD"}
SLICE_TOLERANCE_MM = 0.1  # sidecar slice spacing vs the NIfTI affine
SECONDS_LIMIT = 30.0  # BIDS times are in seconds; a larger value was written in ms by mistake


@dataclass(frozen=True)
class Sidecar:
    """What a sidecar and the file name say about the acquisition (times in ms, field in T)."""

    sequence: str = "unknown"
    series_description: str = ""
    manufacturer: str = ""
    field_strength_t: float | None = None
    notes: tuple[str, ...] = ()


def sidecar_path(volume: Path) -> Path:
    """``<stem>.json`` beside ``<stem>.nii.gz`` / ``.nii``."""
    name = volume.name
    stem = name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else volume.stem
    return volume.with_name(stem + ".json")


def bids_suffix_sequence(volume: Path) -> str | None:
    """The sequence family a BIDS suffix names (``sub-01_T2w.nii.gz`` -> "T2"), or None."""
    stem = sidecar_path(volume).stem
    match = re.search(r"_([A-Za-z0-9]+)$", stem)
    return BIDS_SUFFIX_SEQUENCE.get(match.group(1)) if match else None


BIDS_ENTITY = re.compile(r"(?:^|_)(sub|ses)-([A-Za-z0-9]+)")


def bids_subject_session(volume: Path) -> str:
    """``sub-01_ses-1`` (or ``sub-01``) from a BIDS file name; "" when it names no subject or session."""
    entities = dict(BIDS_ENTITY.findall(volume.name))
    return "_".join(f"{k}-{entities[k]}" for k in ("sub", "ses") if k in entities)


def read_json(path: Path) -> dict[str, Any]:
    """The sidecar as a dict; InputError (one line) when it is not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read the JSON sidecar {path.name}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InputError(f"the JSON sidecar {path.name} is not a JSON object")
    return data


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _ms(value: Any) -> float | None:
    """A BIDS time (s) in ms; values above :data:`SECONDS_LIMIT` are taken as already in ms."""
    seconds = _number(value)
    if seconds is None:
        return None
    return seconds if seconds > SECONDS_LIMIT else seconds * 1000.0


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\\".join(str(v) for v in value)
    return "" if value is None else str(value).strip()


def read_sidecar(volume: Path, slice_spacing_mm: float | None = None) -> Sidecar:
    """Acquisition facts for ``volume`` from its sidecar (when there is one) and its BIDS suffix.

    ``slice_spacing_mm`` (the NIfTI affine's spacing along the slice axis) is checked against the sidecar's
    SpacingBetweenSlices (else SliceThickness): a difference over :data:`SLICE_TOLERANCE_MM` is a note.
    """
    from lumbarkit.io.dicom.series import guess_sequence

    path = sidecar_path(volume)
    data = read_json(path) if path.is_file() else {}
    facts = {k: data[k] for k in ACQUISITION_KEYS if k in data}
    description = _text(facts.get("SeriesDescription")) or _text(facts.get("ProtocolName"))
    acquisition_3d = _text(facts.get("MRAcquisitionType")).upper() == "3D"
    guessed = guess_sequence(description, _ms(facts.get("EchoTime")), _ms(facts.get("RepetitionTime")),
                             _ms(facts.get("InversionTime")), acquisition_3d) if facts else "unknown"
    named = bids_suffix_sequence(volume)
    notes = []
    sequence = guessed
    if named is not None:
        sequence = "T2_SPACE" if named == "T2" and (acquisition_3d or guessed == "T2_SPACE") else named
        if guessed not in ("unknown", sequence):
            notes.append(f"the BIDS suffix of {volume.name} names {named} but its sidecar looks like {guessed}; using {sequence}")
    stated = _number(facts.get("SpacingBetweenSlices")) or _number(facts.get("SliceThickness"))
    if stated is not None and slice_spacing_mm is not None and abs(stated - slice_spacing_mm) > SLICE_TOLERANCE_MM:
        notes.append(f"the sidecar {path.name} gives a slice spacing of {stated:g} mm but the NIfTI affine "
                     f"{slice_spacing_mm:.3g} mm; the affine is used")
    field = _number(facts.get("MagneticFieldStrength"))
    return Sidecar(sequence=sequence, series_description=description, manufacturer=_text(facts.get("Manufacturer")),
                   field_strength_t=field if field is not None and 0 < field < 20 else None, notes=tuple(notes))


def sidecar_identifiers(volume: Path) -> dict[str, str]:
    """The identifiers a sidecar holds (only written with ``--keep-phi``)."""
    path = sidecar_path(volume)
    if not path.is_file():
        return {}
    data = read_json(path)
    return {k: _text(data[k]) for k in IDENTIFIER_KEYS if _text(data.get(k))}
