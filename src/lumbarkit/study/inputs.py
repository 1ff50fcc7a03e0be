"""What a study is made of: the sagittal series of one patient visit, found in the inputs given.

:func:`find_study` accepts

* a DICOM folder (flat or nested, several series mixed): series are grouped by SeriesInstanceUID and
  studies by StudyInstanceUID (a folder holding several studies is an error that lists them); every
  sagittal series is part of the study, localizers and axial/coronal series are left out with a note;
* a folder of NIfTI files named with BIDS suffixes (``*_T1w``, ``*_T2w``, ``*_STIR``; one subject and
  session, else an error listing them); files without such a suffix are left out with a note;
* several inputs given together (files or DICOM folders, each one series), e.g. ``t1.nii.gz t2.nii.gz``;
* one file or a one-series folder: a study of one series (the single-series analysis of earlier versions).

``series`` (``--series``) restricts a DICOM folder to the one series it names, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from lumbarkit.errors import InputError

NIFTI_SUFFIXES = (".nii.gz", ".nii")


@dataclass(frozen=True)
class SeriesRef:
    """One series of a study: where to read it and what it is."""

    source: Path  # DICOM folder/file, or a volume/image file
    series_uid: str | None  # SeriesInstanceUID choosing a series of a DICOM folder (None: the file is the series)
    sequence: str  # "T1", "T2", "T2_SPACE", "STIR", ... or "unknown" (what the tags or the name say)
    description: str = ""  # SeriesDescription or file name (an identifier only with --keep-phi)
    declared: str | None = None  # the sequence the user gave (--sequence); wins over tags and names


@dataclass(frozen=True)
class StudyInputs:
    """The series of one study, in the order they are analysed, and notes about what was left out."""

    series: tuple[SeriesRef, ...]
    notes: tuple[str, ...] = ()
    key: str = ""  # the input an output folder belongs to

    @property
    def single(self) -> bool:
        return len(self.series) == 1


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


SEQUENCES = ("T1", "T2", "T2_SPACE", "STIR", "PD", "T2STAR")


def find_study(inputs: Sequence[str | Path], series: str | None = None, sequences: Sequence[str] | None = None) -> StudyInputs:
    """The study held by ``inputs`` (one or several paths); InputError (one line) when it is not one study.

    ``sequences`` (``--sequence``, one per series found, in order) declares what each series is."""
    study = _find(inputs, series)
    if not sequences:
        return study
    wrong = [s for s in sequences if s not in SEQUENCES]
    if wrong:
        raise InputError(f"--sequence {wrong[0]!r}: use one of {', '.join(SEQUENCES)}")
    if len(sequences) != len(study.series):
        raise InputError(f"{len(sequences)} --sequence value(s) for {len(study.series)} series: give one per series, in order")
    refs = tuple(replace(ref, sequence=seq, declared=seq) for ref, seq in zip(study.series, sequences))
    return replace(study, series=refs)


def _find(inputs: Sequence[str | Path], series: str | None) -> StudyInputs:
    paths = [Path(p) for p in inputs]
    if not paths:
        raise InputError("no input given")
    for p in paths:
        if not p.exists():
            raise InputError(f"input not found: {p}")
    if len(paths) > 1:
        if series is not None:
            raise InputError("--series chooses a series of one DICOM folder; several inputs were given")
        if len({p.resolve() for p in paths}) < len(paths):
            raise InputError("the same input is given twice")
        refs = [_single(p) for p in paths]
        return StudyInputs(tuple(refs), key="|".join(str(p.resolve()) for p in paths))
    path = paths[0]
    if path.is_dir() and _nifti_files(path):
        if series is not None:
            raise InputError("--series chooses a series of a DICOM folder; this folder holds NIfTI files")
        return _bids_study(path)
    if path.is_dir():
        return _dicom_study(path, series)
    if series is not None and not _dicom_file(path):
        raise InputError("--series chooses a series of a DICOM study; this input holds one scan")
    return StudyInputs((_single(path),), key=str(path.resolve()))


def _dicom_file(path: Path) -> bool:
    from lumbarkit.io.readers import is_dicom_path

    return not _is_nifti(path) and is_dicom_path(path)


def _single(path: Path) -> SeriesRef:
    """A file (or a DICOM folder of one series) given as one series; its sequence is read later from its tags."""
    from lumbarkit.io.sidecar import bids_suffix_sequence

    sequence = bids_suffix_sequence(path) if _is_nifti(path) else None
    return SeriesRef(path, None, sequence or "unknown", path.name)


def _nifti_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and _is_nifti(p)
                  and not any(part.startswith(".") or part == "derivatives" for part in p.relative_to(folder).parts))


def _bids_study(folder: Path) -> StudyInputs:
    """The NIfTI files of one BIDS subject/session with a contrast suffix."""
    from lumbarkit.io.sidecar import bids_subject_session, bids_suffix_sequence

    files = _nifti_files(folder)
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(bids_subject_session(f) or "(no subject)", []).append(f)
    if len(groups) > 1:
        raise InputError(f"{folder} holds {len(groups)} subjects/sessions ({', '.join(sorted(groups))}); "
                         "analyse one at a time, or use `lumbarkit batch` for a cohort")
    refs, notes = [], []
    for f in files:
        sequence = bids_suffix_sequence(f)
        if sequence is None:
            notes.append(f"{f.name} left out: no BIDS contrast suffix (_T1w, _T2w, _STIR)")
            continue
        refs.append(SeriesRef(f, None, sequence, f.name))
    if not refs:
        raise InputError(f"no NIfTI file in {folder} has a BIDS contrast suffix (_T1w, _T2w, _STIR): name them, or pass the files")
    return StudyInputs(tuple(refs), tuple(notes), key=str(folder.resolve()))


def series_name(s) -> str:
    """``series 3 (T1)``: a DICOM series named without its description (which may hold identifiers)."""
    from lumbarkit.io.dicom.headers import header_float

    number = header_float(s.header.get("SeriesNumber"))
    return f"series {int(number)} ({s.sequence})" if number is not None else f"a {s.sequence} series"


def _dicom_study(folder: Path, series: str | None) -> StudyInputs:
    """Every sagittal image series of the one study under ``folder``."""
    from lumbarkit.io.dicom.headers import header_text
    from lumbarkit.io.dicom.series import choose_series, collect_frames, group_series, listing

    frames, where = collect_frames(folder)
    all_series = group_series(frames)
    key = str(folder.resolve())
    if series is not None:
        chosen = choose_series(all_series, series, True, where)
        return StudyInputs((SeriesRef(folder, chosen.uid, chosen.sequence, chosen.description),), key=key)
    studies: dict[str, list] = {}
    for s in all_series:
        studies.setdefault(header_text(s.header, "StudyInstanceUID"), []).append(s)
    if len(studies) > 1:
        described = [f"{uid or '(no StudyInstanceUID)'} ({len(group)} series: {listing(group)})" for uid, group in studies.items()]
        raise InputError(f"{where} holds {len(studies)} studies; analyse one at a time (or use `lumbarkit batch`): "
                         + " | ".join(described))
    if len(all_series) == 1:
        only = choose_series(all_series, None, True, where)
        return StudyInputs((SeriesRef(folder, only.uid, only.sequence, only.description),), key=key)
    refs, notes = [], []
    for s in all_series:
        why = ("a localizer" if s.is_localizer else None) or (None if s.plane == "sagittal" else f"{s.plane}, not sagittal")
        if why:
            notes.append(f"{series_name(s)} left out: {why}")
            continue
        refs.append(SeriesRef(folder, s.uid, s.sequence, s.description))
    if not refs:
        raise InputError(f"no sagittal series in {where}: found {listing(all_series)}")
    return StudyInputs(tuple(refs), tuple(notes), key=key)
