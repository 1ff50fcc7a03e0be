"""Check that a refactor left the demo's outputs byte-identical to an earlier commit.

    python benchmarks/demo_identical.py --base c97ad3e

Checks out BASE into a temporary git worktree, runs ``lumbarkit demo`` with that tree's code and
with the working tree's code (same interpreter and packages), and compares ``result.json``,
``levels.csv`` and ``vertebrae.csv`` byte by byte. Prints one line per file; exit 1 on a difference.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("result.json", "levels.csv", "vertebrae.csv")


def run_demo(src: Path, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-m", "lumbarkit", "demo", "-o", str(out), "--overwrite"], env=env, check=True,
                   stdout=subprocess.DEVNULL, cwd=out.parent)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git revision to compare against")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = tmp / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.base], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            run_demo(base / "src", tmp / "demo_base")
            run_demo(ROOT / "src", tmp / "demo_new")
            same = True
            for name in FILES:
                ok = filecmp.cmp(tmp / "demo_base" / "analysis" / name, tmp / "demo_new" / "analysis" / name, shallow=False)
                same &= ok
                print(f"{name}: {'identical' if ok else 'DIFFERS'}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
