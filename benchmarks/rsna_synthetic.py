"""The RSNA track's figures on generated Kaggle-format studies (the README and the closing note quote them).

    python benchmarks/rsna_synthetic.py [--train 20] [--held 6] [--folds 4] [--epochs 30]

Writes ``--train`` studies (seed 0) and ``--held`` other studies (seed 1) with the tests' generator
(``tests/rsna/rsna_synth.py``: phantom T2/T1/axial series, stenosis planted at known severity), trains with
``lumbarkit rsna train``, and prints: the out-of-fold CV score against the label prior, the levels found against
the coordinate rows (superior-inferior p90, mm), and the held-out score of the trained model, of the label prior and
of ``rsna predict`` without a model. Generated data only shows that the machinery works: none of this is a figure
on real RSNA data.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "rsna"))
from rsna_synth import make_rsna  # noqa: E402 (the tests' generator)

CLI = [sys.executable, "-c", "from lumbarkit.cli.main import run; run()"]


def _cli(*args) -> str:
    proc = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return proc.stdout


def _score(sub: Path, labels: Path) -> float:
    return float(_cli("rsna", "score", sub, "--labels", labels).split()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=20)
    ap.add_argument("--held", type=int, default=6)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "train").mkdir()
        (root / "held").mkdir()
        make_rsna(root / "train", args.train, seed=0)
        make_rsna(root / "held", args.held, seed=1, first_id=2000)
        _cli("rsna", "train", root / "train", "-o", root / "model", "--folds", args.folds, "--epochs", args.epochs)
        doc = json.loads((root / "model" / "model.json").read_text())
        cv, prior = doc["metrics"]["cv"]["score"]["score"], doc["metrics"]["prior_only"]["score"]["score"]
        print(f"CV ({args.folds} folds, {args.train} studies): model {cv:.3f}, label prior {prior:.3f}")
        worst = max(v["p90_si_mm"] for v in doc["metrics"]["level_distance_mm"].values())
        print(f"levels vs coordinate rows: superior-inferior p90 at most {worst:.1f} mm over the five levels")
        labels = root / "held" / "train.csv"
        _cli("rsna", "predict", root / "held", "-o", root / "model.csv", "--model", root / "model", "--split", "train")
        _cli("rsna", "predict", root / "held", "-o", root / "rule.csv", "--split", "train")
        with open(root / "model.csv") as fh:
            rows = [r["row_id"] for r in csv.DictReader(fh)]
        with open(root / "prior.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["row_id", "normal_mild", "moderate", "severe"])
            w.writerows([rid, *doc["prior"][i % 25]] for i, rid in enumerate(rows))
        print(f"held out ({args.held} studies): model {_score(root / 'model.csv', labels):.3f}, label prior "
              f"{_score(root / 'prior.csv', labels):.3f}, no model (canal rule + uniform) {_score(root / 'rule.csv', labels):.3f}")


if __name__ == "__main__":
    main()
