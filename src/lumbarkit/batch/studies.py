"""Batch jobs grouped into studies: the series of one patient visit are analysed together, as ``analyze`` does.

A series job carries a grouping key (``Job.study``): ``dicom:<StudyInstanceUID>`` from a folder search,
``bids:<folder>:sub-X_ses-Y`` for NIfTI files named with BIDS entities and a contrast suffix, or
``manifest:<value>`` from a manifest's ``study`` column. Two or more runnable series with one key
become one study job (its ``parts``; one output folder with the study's result, its series under
``series/``); a series whose input is already known to be unusable stays its own error row, so a
damaged series never stops its study. A study job's id is a hash of its folder and its series' ids,
never a tag value.
"""

from __future__ import annotations

import os
from pathlib import Path

from lumbarkit.batch.inputs import Job, hash_id

def bids_study(path: Path) -> str:
    """``bids:<folder>:sub-01_ses-1`` for a NIfTI named with BIDS entities and a contrast suffix, else ""."""
    from lumbarkit.io.sidecar import bids_subject_session, bids_suffix_sequence

    entities = bids_subject_session(path)
    if not entities or not path.name.lower().endswith((".nii", ".nii.gz")) or bids_suffix_sequence(path) is None:
        return ""
    return f"bids:{path.parent}:{entities}"


def group_studies(jobs: list[Job]) -> list[Job]:
    """``jobs`` with every group of two or more runnable series of one study replaced by one study job."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        if job.study and job.error is None:
            groups.setdefault(job.study, []).append(job)
    merged = {key: members for key, members in groups.items() if len(members) >= 2}
    out, done = [], set()
    for job in jobs:
        members = merged.get(job.study) if job.error is None else None
        if not members:
            out.append(job)
        elif job.study not in done:
            done.add(job.study)
            out.append(study_job(job.study, members))
    return out


def _folder(job: Job, attr: str) -> Path:
    """The folder of a series job (a DICOM series' folder itself, a file's parent) as an absolute or display path."""
    path = Path(getattr(job, attr))
    return path if Path(job.input).is_dir() else path.parent


def study_job(key: str, members: list[Job]) -> Job:
    """One job for the series ``members`` of study ``key``: input = their common folder; id = a hash of that folder
    (relative to INPUT) and the series' ids, so a folder search and a manifest listing the same series agree."""
    folder = os.path.commonpath([str(_folder(m, "input")) for m in members])
    display = Path(os.path.commonpath([_folder(m, "display").as_posix() for m in members]) or ".").as_posix()
    job_id = hash_id(display, "study\n" + "\n".join(m.id for m in members))
    lumbar = next((m.lumbar_vertebrae for m in members if m.lumbar_vertebrae is not None), None)
    files = tuple(f for m in members for f in m.files)
    return Job(job_id, folder, display, None, None, files, None, lumbar, key, tuple(members))
