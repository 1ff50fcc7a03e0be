"""A git revision of this repository checked out beside the working tree, for before/after benchmarks."""

from __future__ import annotations

import subprocess
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def base_worktree(revision: str, where: Path):
    """Check ``revision`` out into ``where`` (a temporary git worktree) and remove it afterwards."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), revision], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield where
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], check=False)
