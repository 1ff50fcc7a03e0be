"""Output folders and files that are checked before the work and appear whole or not at all.

:func:`check_output` runs before any analysis: the target must not be a file where a folder is meant
(or the reverse), its parent must be writable, and an existing non-empty folder must be lumbarkit's
output of the same input unless ``overwrite``. :func:`staged_folder` then writes everything into a
temporary folder beside the target and swaps it in whole at the end (the previous contents go), so a
failed or killed run leaves the old folder untouched and no half-written new one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from lumbarkit.errors import InputError
from lumbarkit.report.labelmap import LABEL_SUFFIXES

MARKER = ".lumbarkit-output"  # in every output folder: which input it belongs to


def input_key(source) -> str:
    """The input an output belongs to: its resolved path (a folder or a file), or the paths of several inputs."""
    if isinstance(source, (list, tuple)):
        return str(Path(source[0]).resolve()) if len(source) == 1 else "|".join(str(Path(p).resolve()) for p in source)
    return str(Path(source).resolve())


def _writable_parent(path: Path) -> None:
    """InputError unless a folder can be made beside ``path`` (tried for real: permission bits lie to root)."""
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    try:
        if not parent.is_dir():
            raise OSError
        os.rmdir(tempfile.mkdtemp(prefix=".lumbarkit-probe-", dir=parent))
    except OSError:
        raise InputError(f"cannot write to {path}: {parent} is not a writable folder") from None


def check_output(out: Path, source, overwrite: bool = False) -> None:
    """Validate an output folder before the work; InputError (one line) otherwise."""
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; -o names the output folder")
    _writable_parent(out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        owner = _owner(out)
        if owner is None:
            raise InputError(f"{out} already holds other files: choose an empty or new folder, or add --overwrite to replace it")
        if owner != input_key(source):
            raise InputError(f"{out} holds the results of another input ({Path(owner).name}): choose another folder, "
                             "or add --overwrite to replace it")


def _owner(out: Path) -> str | None:
    try:
        return json.loads((out / MARKER).read_text())["input"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextmanager
def staged_folder(out: Path, source) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``out``; when the block succeeds it replaces ``out`` whole."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".lumbarkit-tmp-{out.name}-", dir=out.parent))
    try:
        yield tmp
        (tmp / MARKER).write_text(json.dumps({"input": input_key(source)}) + "\n")
        old = None
        if out.exists():
            old = out.parent / f"{tmp.name}-old"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def check_label_file(out: Path, overwrite: bool = False) -> Path | None:
    """For ``segment -o``: the label-map file to write, or None when ``out`` names a folder. A name with another
    suffix (``x.txt``), a folder where a file is meant, or an existing file without ``overwrite`` is an InputError."""
    out = Path(out)
    name = out.name.lower()
    if out.is_dir():
        return None
    if name.endswith(LABEL_SUFFIXES):
        if out.exists() and not overwrite:
            raise InputError(f"{out} exists: add --overwrite to replace it")
        _writable_parent(out)
        return out
    if "." in name:
        raise InputError(f"-o {out.name}: a label map is written as {', '.join(LABEL_SUFFIXES)}, or give a folder")
    return None
