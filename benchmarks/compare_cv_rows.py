"""Compare two segmentation models' held-out CV rows on the cases both held out.

Usage: python benchmarks/compare_cv_rows.py NEW_cv_rows.json OLD_cv_rows.json
(e.g. the packaged src/lumbarkit/models/segment_2d/cv_rows.json against `git show REV:...cv_rows.json`).
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    new, old = ({r["case"]: r for r in json.load(open(p))} for p in sys.argv[1:3])
    for key in ("dice_vertebral_body", "dice_disc", "dice_vertebra", "dice_spinal_canal"):
        common = [c for c in new if c in old and key in new[c] and key in old[c]]
        if common:
            mean = lambda rows: sum(rows[c][key] for c in common) / len(common)  # noqa: E731
            print(f"{key:22s} {len(common):3d} cases  new {mean(new):.3f}  old {mean(old):.3f}")
    named = [c for c in new if c in old and "naming_all_correct" in new[c] and "naming_all_correct" in old[c]]
    print(f"every level named correctly: new {sum(new[c]['naming_all_correct'] for c in named)}/{len(named)}, "
          f"old {sum(old[c]['naming_all_correct'] for c in named)}/{len(named)}")


if __name__ == "__main__":
    main()
