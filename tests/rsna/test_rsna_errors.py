"""Unusable RSNA inputs through the command line: one ``error:`` line, exit code 2, nothing written."""

from __future__ import annotations

import subprocess
import sys

CLI = [sys.executable, "-c", "from lumbarkit.cli.main import run; run()"]


def _run(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_unusable_rsna_inputs_are_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "sub.csv").write_text("row_id,normal_mild,moderate\n1_spinal_canal_stenosis_l1_l2,0.5,0.5\n")
    (tmp_path / "train.csv").write_text("study_id,spinal_canal_stenosis_l1_l2\n1,Severe\n")
    cases = [(("rsna", "check", tmp_path / "nope"), "not found"),
             (("rsna", "check", tmp_path / "empty"), "is not RSNA-format data"),
             (("rsna", "predict", tmp_path / "empty", "-o", tmp_path / "out.csv", "--model", tmp_path / "empty"), "not an RSNA model folder"),
             (("rsna", "score", tmp_path / "sub.csv", "--labels", tmp_path / "train.csv"), "lacks column(s) severe")]
    for args, words in cases:
        proc = _run(*args)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out.csv").exists()
