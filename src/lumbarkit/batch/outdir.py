"""The batch output folder: its lock, stale temporary files, completion markers."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from lumbarkit.batch.cohort import MARKER, read_marker
from lumbarkit.batch.inputs import OUTDIR_MARKER, Job
from lumbarkit.errors import InputError
from lumbarkit.report.outputs import TMP_PREFIX


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


@contextmanager
def outdir_lock(outdir: Path):
    """Hold ``OUTDIR/.lumbarkit-batch`` locked: two batches writing one folder would delete each other's temp files."""
    outdir.mkdir(parents=True, exist_ok=True)
    with open(outdir / OUTDIR_MARKER, "a+", encoding="utf-8") as fh:  # the lock is released when fh closes
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no advisory locks on this platform
            pass
        except OSError:
            raise InputError(f"another lumbarkit batch is writing to {outdir}: wait for it or choose another -o folder") from None
        if fh.tell() == 0:
            fh.write("lumbarkit batch output folder\n")
            fh.flush()
        yield


def clean_stale(outdir: Path) -> int:
    """Remove temporary folders/files left by a killed run; returns how many."""
    stale = [p for p in outdir.glob(f"{TMP_PREFIX}*")]
    stale += [p for d in outdir.iterdir() if d.is_dir() and not d.name.startswith(".") for p in d.rglob(f"{TMP_PREFIX}*")]
    for p in stale:
        remove_path(p)
    return len(stale)


def is_complete(outdir: Path, job: Job, config: dict | None = None, outputs: dict | None = None) -> bool:
    """The series folder is complete for this very input (same files, same fingerprint), ``config`` (a dict of the
    pipeline options; None: not compared) and ``outputs`` (the output options; a marker without them had the defaults)."""
    marker = read_marker(outdir, job.id)
    if marker is None or any(marker.get(k) != v for k, v in job.key().items()):
        return False
    if outputs is not None and marker.get("outputs", {"keep_phi": False, "dicom": False}) != outputs:
        return False
    return config is None or marker.get("config") == config


def unpublish(outdir: Path, job_id: str) -> None:
    """Make an earlier output of ``job_id`` incomplete before redoing it (marker first)."""
    (outdir / job_id / MARKER).unlink(missing_ok=True)
