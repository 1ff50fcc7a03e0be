"""Inputs of ``lumbarkit batch``: one :class:`Job` per series, from a folder or a manifest CSV.

Folder (searched recursively, hidden entries skipped):

* DICOM files are grouped by SeriesInstanceUID, one job per series; the job lists the series'
  own files so a damaged file of another series never stops it. A damaged DICOM file fails
  the series it belongs to (or, when its header is unreadable, every series in its folder):
  reading a series with a missing slice would give wrong measurements.
* NIfTI / MHA / MHD / NRRD files are one job each. Files that look like label maps
  (``*_label*``, ``*seg*``, ``*mask*``) are analysed too, with a note: a manifest chooses inputs.
* PNG / JPEG / TIFF images need a pixel spacing, which only a manifest gives: without one they
  become error rows.
* Our own output folders (a batch OUTDIR, or any folder holding ``result.json`` and
  ``report.html``) are skipped.

Manifest: a CSV with the column ``input`` (paths relative to the manifest's folder or
absolute) and optional ``id``, ``spacing_row_mm``, ``spacing_col_mm``, ``series``,
``lumbar_vertebrae`` (4, 5 or 6 for a spine known to be transitional) and ``study`` (rows with the
same value are one study); other columns are ignored. One row is one series.

Series of one study (DICOM StudyInstanceUID, BIDS subject/session, or the manifest's ``study``) are
then grouped into one study job (:mod:`lumbarkit.batch.studies`).

A job's id is the manifest's ``id`` or a short hash of the input's path relative to INPUT
(plus the SeriesInstanceUID for a DICOM series): stable across runs, and never built from a
patient name or any other DICOM tag value.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from lumbarkit.errors import InputError
from lumbarkit.io.readers import IMAGE_SUFFIXES, VOLUME_SUFFIXES

MANIFEST_COLUMNS = ("input", "id", "spacing_row_mm", "spacing_col_mm", "series", "lumbar_vertebrae", "study")
OUTDIR_MARKER = ".lumbarkit-batch"  # present in every batch output folder (also its lock file)
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
ID_HASH_CHARS = 12
MASK_NAME = re.compile(r"(^|[^a-z])(label|labels|seg|segmentation|mask)([^a-z]|$)", re.IGNORECASE)
NO_SPACING = "2D image without pixel spacing: list it in a manifest CSV with spacing_row_mm and spacing_col_mm"


@dataclass(frozen=True)
class Job:
    """One series to analyse.

    input : absolute path given to the pipeline (a file, or the folder holding a DICOM series).
    display : the input as the user knows it (relative to INPUT or as written in the manifest).
    files : the DICOM files of the series, when found by a folder search.
    error : why the job cannot run, when known before analysis (it becomes an error row).
    """

    id: str
    input: str
    display: str
    series: str | None = None
    spacing_mm: tuple[float, float] | None = None
    files: tuple[str, ...] = ()
    error: str | None = None
    lumbar_vertebrae: int | None = None
    study: str = ""  # grouping key: series with the same key form one study job (see lumbarkit.batch.studies)
    parts: tuple["Job", ...] = ()  # a study job: its series jobs

    def key(self) -> dict:
        """What identifies the job's input; a completed output with another key is redone. The fingerprint changes
        when a file of the series is replaced, touched, added or removed, or the input lies under another root;
        a study's key holds the key of every series in it."""
        if self.parts:
            return {"input": self.display, "study": [part.key() for part in self.parts], "lumbar_vertebrae": self.lumbar_vertebrae}
        return {"input": self.display, "series": self.series,
                "spacing_mm": list(self.spacing_mm) if self.spacing_mm is not None else None,
                "lumbar_vertebrae": self.lumbar_vertebrae, "fingerprint": self.fingerprint()}

    def fingerprint(self) -> str:
        """sha256 of (absolute path, size, modification time) of every file the job reads."""
        import hashlib

        paths = [Path(f) for f in self.files] if self.files else [Path(self.input)]
        if not self.files and paths[0].is_dir():
            paths = sorted(p for p in paths[0].rglob("*") if p.is_file())
        h = hashlib.sha256()
        for p in sorted(paths):
            try:
                st = p.stat()
                h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{p}\0missing\n".encode())
        return h.hexdigest()


@dataclass
class Discovery:
    """The jobs found under INPUT and what was left out."""

    jobs: list[Job]
    ignored_files: int = 0  # neither a scan nor a DICOM image (text, .raw data of .mhd, DICOMDIR, SR, ...)
    notes: list[str] = field(default_factory=list)


def hash_id(display: str, series: str | None = None) -> str:
    """Stable, non-identifying id from the input's path relative to INPUT and its series UID.

    The same input gets the same id from a folder search and from a manifest beside that folder."""
    return hashlib.sha256(f"{display}\n{series or ''}".encode("utf-8")).hexdigest()[:ID_HASH_CHARS]


def check_id(job_id: str, where: str) -> None:
    from lumbarkit.batch.cohort import RESERVED_NAMES

    if not ID_PATTERN.match(job_id) or job_id in RESERVED_NAMES:
        raise InputError(f"{where}: id {job_id!r} cannot name an output folder (use letters, digits, '.', '_', '-'; "
                         "not starting with '.' or '-'; not a cohort file name)")


def _kind(name: str) -> str:
    lower = name.lower()
    if lower.endswith(VOLUME_SUFFIXES):
        return "volume"
    if lower.endswith(IMAGE_SUFFIXES):
        return "image"
    return "other"


def _rel(path: Path, root: Path) -> str:
    rel = Path(os.path.relpath(path, root)).as_posix()
    return rel


def discover_jobs(source: str | Path, outdir: str | Path | None = None) -> Discovery:
    """Jobs of a folder (searched recursively) or a manifest CSV; see the module docstring.

    Raises
    ------
    InputError : INPUT missing, neither a folder nor a .csv, a malformed manifest, or duplicate ids.
    """
    src = Path(source)
    if not src.exists():
        raise InputError(f"input not found: {src}")
    if src.is_file():
        if src.suffix.lower() != ".csv":
            raise InputError(f"{src.name} is neither a folder nor a manifest .csv (use `lumbarkit analyze` for one scan)")
        found = Discovery(read_manifest(src))
    else:
        found = _search_folder(src, Path(outdir) if outdir is not None else None)
    from lumbarkit.batch.studies import group_studies

    found.jobs = group_studies(found.jobs)
    _check_unique(found.jobs)
    masks = [j.display for j in found.jobs if not j.files and MASK_NAME.search(Path(j.display).name)]
    if masks and not src.is_file():
        found.notes.append(f"{len(masks)} input(s) look like label maps (e.g. {masks[0]}); they are analysed like scans: "
                           "list the inputs in a manifest CSV to leave them out")
    return found


def _check_unique(jobs: list[Job]) -> None:
    seen: dict[str, Job] = {}
    for job in jobs:
        if job.id in seen:
            raise InputError(f"two inputs have the id {job.id!r}: {seen[job.id].display} and {job.display}")
        seen[job.id] = job


# ----------------------------------------------------------------------------- manifest


def _spacing(row: dict, where: str) -> tuple[tuple[float, float] | None, str | None]:
    cells = [(row.get(k) or "").strip() for k in ("spacing_row_mm", "spacing_col_mm")]
    if not any(cells):
        return None, None
    if not all(cells):
        return None, f"{where}: give both spacing_row_mm and spacing_col_mm"
    try:
        values = (float(cells[0]), float(cells[1]))
    except ValueError:
        return None, f"{where}: pixel spacing must be numbers in mm, got {cells[0]!r}, {cells[1]!r}"
    if not all(math.isfinite(v) and 0 < v <= 10 for v in values):
        return None, f"{where}: pixel spacing must be two positive numbers in mm, got {cells[0]}, {cells[1]}"
    return values, None


def _lumbar(row: dict, where: str) -> tuple[int | None, str | None]:
    cell = (row.get("lumbar_vertebrae") or "").strip()
    if not cell:
        return None, None
    if cell not in ("4", "5", "6"):
        return None, f"{where}: lumbar_vertebrae must be 4, 5 or 6, got {cell!r}"
    return int(cell), None


def read_manifest(path: str | Path) -> list[Job]:
    """Jobs of a manifest CSV, one per row (paths relative to the manifest's folder).

    Rows whose input is missing or whose spacing is unusable become jobs with an ``error``;
    a missing ``input`` column, an empty input cell or an unusable id raise :class:`InputError`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read manifest {path.name}: {type(exc).__name__}") from None
    reader = csv.DictReader(text.splitlines())
    header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
    if "input" not in header:
        raise InputError(f"manifest {path.name} needs an 'input' column (optional: {', '.join(MANIFEST_COLUMNS[1:])})")
    reader.fieldnames = header
    jobs = []
    for lineno, row in enumerate(reader, start=2):
        where = f"{path.name} line {lineno}"
        raw = (row.get("input") or "").strip()
        if not raw:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue  # a blank line
            raise InputError(f"{where}: empty input")
        display = Path(raw).as_posix()
        target = Path(raw).expanduser()
        if not target.is_absolute():
            target = path.parent / target
        series = (row.get("series") or "").strip() or None
        job_id = (row.get("id") or "").strip() or hash_id(display, series)
        check_id(job_id, where)
        spacing, error = _spacing(row, where)
        lumbar, lumbar_error = _lumbar(row, where)
        error = error or lumbar_error
        if error is None and not target.exists():
            error = f"input not found: {display}"
        elif error is None and target.is_file() and _kind(target.name) == "image" and spacing is None:
            error = NO_SPACING
        study = (row.get("study") or "").strip()
        jobs.append(Job(job_id, str(target.resolve()), display, series, spacing, (), error, lumbar, f"manifest:{study}" if study else ""))
    if not jobs:
        raise InputError(f"manifest {path.name} lists no inputs")
    return jobs


# ----------------------------------------------------------------------------- folder search


def _is_output_folder(names: list[str]) -> bool:
    return OUTDIR_MARKER in names or ("result.json" in names and "report.html" in names)


def _search_folder(root: Path, outdir: Path | None) -> Discovery:
    from lumbarkit.io.dicom.headers import (
        classify,
        error_reason,
        is_dicom_file,
        read_header,
    )
    from lumbarkit.io.dicom.series import DICOM_SUFFIXES

    root = root.resolve()
    skip = outdir.resolve() if outdir is not None else None
    jobs: list[Job] = []
    series_files: dict[tuple[str, str], list[Path]] = {}  # (uid, folder if no uid) -> files
    planes: dict[tuple[str, str], str] = {}  # the same keys -> acquisition plane of the series' first image
    studies: dict[tuple[str, str], str] = {}  # the same keys -> StudyInstanceUID
    damaged: list[tuple[Path, str, str | None]] = []  # file, reason, its series uid when readable
    ignored = 0
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if (skip is not None and here == skip) or _is_output_folder(filenames):
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            file = here / name
            kind = _kind(name)
            rel = _rel(file, root)
            if kind == "volume":
                from lumbarkit.batch.studies import bids_study

                jobs.append(Job(hash_id(rel), str(file), rel, study=bids_study(file)))
            elif kind == "image":
                jobs.append(Job(hash_id(rel), str(file), rel, error=NO_SPACING))
            elif not is_dicom_file(file):
                if file.suffix.lower() in DICOM_SUFFIXES:
                    damaged.append((file, "not a valid DICOM file", None))
                else:
                    ignored += 1
            else:
                try:
                    ds = read_header(file)
                except Exception as exc:
                    damaged.append((file, error_reason(exc), None))
                    continue
                uid = str(ds.get("SeriesInstanceUID", "") or "").strip()
                what = classify(ds)
                if what == "image":
                    key = (uid, "" if uid else str(here))
                    series_files.setdefault(key, []).append(file)
                    planes.setdefault(key, image_plane(ds))
                    studies.setdefault(key, str(ds.get("StudyInstanceUID", "") or "").strip())
                elif what == "non-image":
                    ignored += 1
                else:
                    why = "an image without pixel data (truncated or incomplete file?)" if what == "no-pixels" else "truncated or corrupt DICOM header"
                    damaged.append((file, why, uid or None))
    skipped = {k: planes[k] for k in list(series_files) if planes.get(k) not in ("sagittal", "")}
    for k in skipped:
        del series_files[k]
    damaged = [d for d in damaged if not d[2] or all(d[2] != k[0] for k in skipped)]
    study_of = {key[0]: f"dicom:{uid}" for key, uid in studies.items() if key[0] and uid}
    jobs += [replace(j, study=study_of.get(j.series or "", "")) for j in _series_jobs(root, series_files, damaged)]
    jobs.sort(key=lambda j: (j.display, j.series or ""))
    notes = []
    if skipped:
        kinds = sorted(set(skipped.values()))
        notes.append(f"{len(skipped)} non-sagittal DICOM series skipped ({', '.join(kinds)}): lumbarkit analyses sagittal series")
    return Discovery(jobs, ignored, notes)


def _series_jobs(root: Path, series_files: dict, damaged: list) -> list[Job]:
    problems: dict[tuple[str, str], str] = {}
    by_uid = {uid: key for key, _ in series_files.items() for uid in [key[0]] if uid}
    orphans = []
    for file, why, uid in damaged:
        reason = f"damaged DICOM file {file.name}: {why}; remove or replace it"
        if uid and uid in by_uid:
            problems.setdefault(by_uid[uid], reason)
        elif uid:
            series_files[(uid, "")] = []
            problems[(uid, "")] = reason
            by_uid[uid] = (uid, "")
        else:  # its series is unknown: every series with files in its folder is suspect
            hit = [k for k, files in series_files.items() if any(f.parent == file.parent for f in files)]
            for k in hit:
                problems.setdefault(k, f"{reason} (its series cannot be told, so no series of its folder is read)")
            if not hit:
                orphans.append((file, reason))
    jobs = []
    for key, files in series_files.items():
        uid = key[0]
        folder = Path(os.path.commonpath([str(f.parent) for f in files])) if files else _folder_of(uid, damaged)
        display = _rel(folder, root)
        ordered = tuple(str(f) for f in sorted(files))
        jobs.append(Job(hash_id(display, uid), str(folder), display, uid or None, None, ordered, problems.get(key)))
    for file, reason in orphans:
        rel = _rel(file, root)
        jobs.append(Job(hash_id(rel), str(file), rel, error=reason))
    return jobs


def _folder_of(uid: str, damaged: list) -> Path:
    return next(f.parent for f, _, u in damaged if u == uid)


__all__ = ["MANIFEST_COLUMNS", "OUTDIR_MARKER", "Discovery", "Job", "discover_jobs", "hash_id", "read_manifest"]


def image_plane(ds) -> str:
    """"sagittal", "axial", "coronal" or "localizer" from a DICOM image header; "" when it cannot be told."""
    from lumbarkit.io.dicom.headers import acquisition_plane, header_floats, iop_problem

    if "LOCALIZER" in [str(v).upper() for v in (ds.get("ImageType") or [])]:
        return "localizer"
    iop = header_floats(ds.get("ImageOrientationPatient"), 6)
    return "" if iop is None or iop_problem(iop) is not None else acquisition_plane(iop)
