"""DICOM series: collect image headers under a path, group them by series and choose one.

Part of :mod:`lumbarkit.io.dicom`. Damaged files stop reading even outside the chosen series
(their series cannot be trusted); non-image objects are ignored. Without ``--series`` a lone
series is used; in a study a sagittal, non-localizer T2 is preferred, then T1.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lumbarkit.errors import InputError, SeriesSelectionError
from lumbarkit.io.dicom.headers import (
    COSINE_TOLERANCE,
    Frame,
    acquisition_plane,
    classify,
    error_reason,
    frames_from_header,
    group_value,
    header_float,
    header_text,
    iop_problem,
    is_dicom_file,
    read_header,
    sop_class,
    sop_class_name,
)

# One logger for the whole DICOM reader/writer, named after the public module (log output unchanged).
log = logging.getLogger("lumbarkit.io.dicom")

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
MAX_LISTED = 8  # series listed in one error message


SEQUENCE_3D_WORDS = ("SPACE", "CUBE", "VISTA", "3D", "ISO")


def guess_sequence(
    description: str,
    echo_time_ms: float | None = None,
    repetition_time_ms: float | None = None,
    inversion_time_ms: float | None = None,
    acquisition_3d: bool = False,
) -> str:
    """Sequence family from the series description, else from echo/repetition/inversion times (ms).

    Returns one of "T1", "T2", "T2_SPACE", "T2STAR", "STIR", "PD" or "unknown".
    """
    d = description.upper()
    is_3d = acquisition_3d or any(word in d for word in SEQUENCE_3D_WORDS)
    if re.search(r"STIR|TIRM", d):
        return "STIR"
    if re.search(r"(?<![0-9])T2\s*(\*|STAR)", d):
        return "T2STAR"
    if re.search(r"(?<![0-9])T2(?![0-9])", d):
        return "T2_SPACE" if is_3d else "T2"
    if re.search(r"(?<![0-9])T1(?![0-9])", d):
        return "T1"
    if re.search(r"(?<![A-Z])PD(?![A-Z])", d):
        return "PD"
    if inversion_time_ms is not None and 50 <= inversion_time_ms <= 250:
        return "STIR"
    if echo_time_ms is not None:
        if echo_time_ms >= 60:
            return "T2_SPACE" if is_3d else "T2"
        if echo_time_ms <= 30 and repetition_time_ms is not None:
            if repetition_time_ms <= 1000:
                return "T1"
            if repetition_time_ms >= 2000:
                return "PD"
    return "unknown"


def _echo_time_ms(ds: Any) -> float | None:
    te = header_float(ds.get("EchoTime"))
    if te is None:
        shared = ds.get("SharedFunctionalGroupsSequence")
        te = header_float(group_value([shared[0]] if shared else [], "MREchoSequence", "EffectiveEchoTime"))
    return te


def _repetition_time_ms(ds: Any) -> float | None:
    tr = header_float(ds.get("RepetitionTime"))
    if tr is None:
        shared = ds.get("SharedFunctionalGroupsSequence")
        tr = header_float(group_value([shared[0]] if shared else [], "MRTimingAndRelatedParametersSequence", "RepetitionTime"))
    return tr


@dataclass
class Series:
    uid: str
    frames: list[Frame]

    @property
    def header(self) -> Any:
        return self.frames[0].header

    @property
    def description(self) -> str:
        return header_text(self.header, "SeriesDescription")

    @property
    def plane(self) -> str:
        """"sagittal", "coronal", "axial", "mixed" (several orientations) or "no geometry"."""
        iops = [f.iop for f in self.frames]
        if any(iop is None for iop in iops) or iop_problem(iops[0]) is not None:
            return "no geometry"
        if any(not np.allclose(iop, iops[0], atol=COSINE_TOLERANCE) for iop in iops[1:]):
            return "mixed"
        return acquisition_plane(iops[0])

    @property
    def sequence(self) -> str:
        ds = self.header
        return guess_sequence(
            self.description,
            _echo_time_ms(ds),
            _repetition_time_ms(ds),
            header_float(ds.get("InversionTime")),
            header_text(ds, "MRAcquisitionType").upper() == "3D",
        )

    @property
    def is_localizer(self) -> bool:
        words = (self.description + " " + header_text(self.header, "ImageType")).upper()
        return any(w in words for w in ("LOCALIZER", "LOCALISER", "SCOUT", "SURVEY", "LOCATOR"))

    def label(self) -> str:
        return f"{self.uid or '(no SeriesInstanceUID)'} ('{self.description or 'no description'}', {self.plane}, {len(self.frames)} images)"


def listing(series: list[Series]) -> str:
    text = "; ".join(s.label() for s in series[:MAX_LISTED])
    return text + (f"; and {len(series) - MAX_LISTED} more" if len(series) > MAX_LISTED else "")


def collect_frames(path: Path) -> tuple[list[Frame], str]:
    """Header frames of all DICOM images under ``path`` (a folder or a file) and a display name."""
    if path.is_file():
        if not is_dicom_file(path):
            raise InputError(f"{path.name} is not a DICOM file")
        files = [path]
    else:
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise InputError(f"folder {path} is empty")
    frames: list[Frame] = []
    broken: list[tuple[Path, str]] = []
    non_image: list[Path] = []
    ignored: list[Path] = []
    for file in files:
        if not is_dicom_file(file):
            if file.suffix.lower() in DICOM_SUFFIXES:
                broken.append((file, "not a valid DICOM file"))
            else:
                ignored.append(file)
            continue
        try:
            ds = read_header(file)
        except Exception as exc:
            broken.append((file, error_reason(exc)))
            continue
        kind = classify(ds)
        if kind == "image":
            frames.extend(frames_from_header(file, ds))
        elif kind == "non-image":
            non_image.append(file)
            log.debug("ignoring non-image DICOM object %s (%s)", file, sop_class_name(sop_class(ds)))
        elif kind == "no-pixels":
            broken.append((file, "an image without pixel data (truncated or incomplete file?)"))
        else:
            broken.append((file, "truncated or corrupt DICOM header"))
    if broken:
        file, why = broken[0]
        more = f" (and {len(broken) - 1} more damaged files)" if len(broken) > 1 else ""
        raise InputError(f"cannot read DICOM file {file.name}{more}: {why}; remove or replace damaged files")
    if not frames:
        if non_image:
            names = ", ".join(p.name for p in non_image[:3])
            if path.is_file():
                raise InputError(f"{path.name} is a DICOM {sop_class_name(sop_class(read_header(path))) or 'object'} without pixel data, not an image")
            raise InputError(f"no DICOM images in {path}: only {len(non_image)} non-image DICOM object(s) ({names})")
        names = ", ".join(p.name for p in ignored[:3])
        raise InputError(f"no DICOM files in {path} ({len(ignored)} non-DICOM file(s), e.g. {names}); pass a volume or image file itself")
    if ignored:
        log.info("ignored %d non-DICOM files in %s", len(ignored), path)
    return frames, (path.name if path.is_file() else str(path))


def group_series(frames: list[Frame]) -> list[Series]:
    by_uid: dict[str, dict[str, Frame]] = {}
    for frame in frames:
        instances = by_uid.setdefault(frame.series_uid, {})
        key = frame.instance_uid or f"{frame.path}#{frame.frame}"
        if key in instances:
            log.debug("skipping duplicate instance %s (%s)", key, frame.path)
            continue
        instances[key] = frame
    series = [Series(uid, list(instances.values())) for uid, instances in by_uid.items()]
    series.sort(key=lambda s: (int(header_float(s.header.get("SeriesNumber")) or 0), s.description, s.uid))
    return series


def _check_plane(chosen: Series, require_sagittal: bool, where: str) -> None:
    plane = chosen.plane
    if require_sagittal and plane not in ("sagittal", "no geometry"):
        what = "mixes image orientations" if plane == "mixed" else f"is {plane}, not sagittal"
        raise InputError(f"no sagittal series in {where}: {chosen.label()} {what}; lumbarkit needs sagittal images")


def _choose_named(series: list[Series], choice: str, require_sagittal: bool, where: str) -> Series:
    exact = [s for s in series if s.uid == choice.strip()]
    if exact:
        return exact[0]
    wanted = choice.strip().lower()
    matches = [s for s in series if s.description.lower() == wanted] or [
        s for s in series if wanted and wanted in s.description.lower()
    ]
    if len(matches) > 1 and require_sagittal:
        sagittal = [s for s in matches if s.plane == "sagittal"]
        matches = sagittal if len(sagittal) == 1 else matches
    if not matches:
        available = ", ".join(repr(s.description or "no description") for s in series)
        raise SeriesSelectionError(f"no series of {where} matches --series {choice!r}; available series descriptions: {available}")
    if len(matches) > 1:
        raise SeriesSelectionError(
            f"--series {choice!r} matches {len(matches)} series of {where}; pass a SeriesInstanceUID: {listing(matches)}"
        )
    return matches[0]


def choose_series(series: list[Series], choice: str | None, require_sagittal: bool, where: str) -> Series:
    if choice:
        chosen = _choose_named(series, choice, require_sagittal, where)
        _check_plane(chosen, require_sagittal, where)
        return chosen
    if len(series) == 1:
        _check_plane(series[0], require_sagittal, where)
        return series[0]
    candidates = [s for s in series if s.plane == "sagittal"]
    if not candidates:
        if require_sagittal:
            raise InputError(f"no sagittal series in {where}: found {listing(series)}")
        candidates = [s for s in series if s.plane != "no geometry"] or series
    candidates = [s for s in candidates if not s.is_localizer] or candidates
    kind = "sagittal " if all(s.plane == "sagittal" for s in candidates) else ""
    for family, names in (("T2", ("T2", "T2_SPACE")), ("T1", ("T1",))):
        group = [s for s in candidates if s.sequence in names]
        if len(group) == 1:
            return group[0]
        if len(group) > 1:
            raise SeriesSelectionError(
                f"{where} holds {len(group)} {kind}{family} series; choose one with --series UID or --series DESCRIPTION: {listing(group)}"
            )
    if len(candidates) == 1:
        return candidates[0]
    raise SeriesSelectionError(
        f"{where} holds {len(candidates)} {kind}series and none is T2 or T1; choose one with --series UID or --series DESCRIPTION: {listing(candidates)}"
    )
