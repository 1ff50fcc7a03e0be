"""`lumbarkit batch` on real shared data: resume after kill -9, error rows, 1 vs 2 workers, input discovery.

Small on purpose (a handful of SPIDER slices and small volumes, --no-hotspots): the whole file runs
in about a minute on two cores.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lumbarkit.batch.cohort import MARKER
from lumbarkit.report.outputs import TMP_PREFIX

pytestmark = pytest.mark.slow  # Dask clusters and subprocesses

SPIDER_SLICES = ("1_t2", "10_t2", "100_t2")  # mid-sagittal T2 slices, spacing from series.csv
PATIENT = {"PatientName": "Batchtest^Planted", "PatientID": "PID-BATCH-4471"}


def _env() -> dict:
    return {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lumbarkit", *map(str, args)], capture_output=True, text=True,
                          env=_env(), timeout=600)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _leftovers(out: Path) -> list[str]:
    return [str(p.relative_to(out)) for p in out.rglob("*") if p.name.startswith(TMP_PREFIX)]


def _spider_spacing(shared_data: Path) -> dict[str, list[str]]:
    with open(shared_data / "spider" / "series.csv") as fh:
        return {r["series"]: r["PixelSpacing"].strip("[]").replace(",", " ").split() for r in csv.DictReader(fh)}


def _noise_png(path: Path) -> Path:
    import imageio.v3 as iio

    iio.imwrite(path, (np.random.default_rng(0).random((256, 256)) * 40).astype(np.uint8))
    return path


@pytest.fixture(scope="module")
def manifest(shared_data, tmp_path_factory) -> Path:
    """3 SPIDER slices + 1 volume (good), a corrupt NIfTI and a noise image (bad), as a manifest CSV."""
    folder = tmp_path_factory.mktemp("batch_manifest")
    spacing = _spider_spacing(shared_data)
    (folder / "corrupt.nii.gz").write_bytes(np.random.default_rng(1).bytes(4000))
    _noise_png(folder / "noise.png")
    rows = [{"input": str(shared_data / "spider" / "images" / f"{s}.png"), "id": f"spider_{s}",
             "spacing_row_mm": spacing[s][0], "spacing_col_mm": spacing[s][1]} for s in SPIDER_SLICES]
    rows += [{"input": str(shared_data / "volumes" / "ivd_11_image.nii.gz"), "id": "ivd_11"},
             {"input": "corrupt.nii.gz", "id": "corrupt"},
             {"input": "noise.png", "spacing_row_mm": "1", "spacing_col_mm": "1"}]  # id: a hash of the path
    path = folder / "manifest.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["input", "id", "spacing_row_mm", "spacing_col_mm"])
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def one_worker(manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch_w1") / "out"
    proc = _cli("batch", manifest, "-o", out, "--workers", "1", "--no-hotspots")
    return out, proc


def test_bad_series_are_error_rows_and_the_rest_completes(one_worker):
    out, proc = one_worker
    assert proc.returncode == 3, proc.stderr  # some series failed (documented exit code)
    assert "4 analysed" in proc.stdout and "2 failed" in proc.stdout and "2 series failed" in proc.stderr
    errors = _rows(out / "errors.csv")
    assert len(errors) == 2
    by_input = {e["input"]: e for e in errors}
    assert set(by_input) == {"corrupt.nii.gz", "noise.png"}
    assert by_input["corrupt.nii.gz"]["series_id"] == "corrupt"
    assert "spine" in by_input["noise.png"]["reason"]
    assert all(e["reason"] and "\n" not in e["reason"] for e in errors)
    good = ["ivd_11", *(f"spider_{s}" for s in SPIDER_SLICES)]
    for sid in good:
        assert (out / sid / MARKER).is_file(), sid
        doc = json.loads((out / sid / "result.json").read_text())
        assert len(doc["levels"]) >= 3
        for name in ("levels.csv", "vertebrae.csv", "qc.png", "report.html"):
            assert (out / sid / name).is_file(), (sid, name)
    assert not (out / "corrupt").exists() and not (out / errors[0]["series_id"]).exists()
    cohort = _rows(out / "cohort.csv")
    assert sorted({r["series_id"] for r in cohort}) == sorted(good)
    assert list(cohort[0])[:3] == ["series_id", "level", "pfirrmann"]
    for sid in good:  # every disc of every series, once, in anatomical order
        assert [r["level"] for r in cohort if r["series_id"] == sid] == [r["level"] for r in _rows(out / sid / "levels.csv")]
    vert = _rows(out / "vertebrae.csv")
    assert vert and vert[0]["series_id"] == "ivd_11" and "height_middle_mm" in vert[0]
    import pandas as pd

    frame = pd.read_parquet(out / "cohort.parquet")
    assert len(frame) == len(cohort) and frame["disc_height_middle_mm"].dtype.kind == "f"
    assert (out / "cohort_disc_height.png").is_file() and (out / "cohort_vertebral_height.png").is_file()
    index = {r["series_id"]: r["status"] for r in _rows(out / "index.csv")}
    assert sum(s == "complete" for s in index.values()) == 4 and sum(s == "failed" for s in index.values()) == 2
    assert _leftovers(out) == []


def test_one_and_two_workers_give_identical_cohort(one_worker, manifest, tmp_path):
    out1, proc1 = one_worker
    assert proc1.returncode == 3, proc1.stderr
    out2 = tmp_path / "out"
    proc = _cli("batch", manifest, "-o", out2, "--workers", "2", "--no-hotspots")
    assert proc.returncode == 3, proc.stderr
    for name in ("cohort.csv", "vertebrae.csv", "errors.csv", "index.csv"):
        assert (out2 / name).read_bytes() == (out1 / name).read_bytes(), name
    assert (out2 / "ivd_11" / "result.json").read_bytes() == (out1 / "ivd_11" / "result.json").read_bytes()


def test_nothing_succeeded_is_exit_1_with_one_line(tmp_path):
    _noise_png(tmp_path / "noise.png")
    (tmp_path / "m.csv").write_text("input,spacing_row_mm,spacing_col_mm\nnoise.png,1,1\n")
    proc = _cli("batch", tmp_path / "m.csv", "-o", tmp_path / "out", "--workers", "1")
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no series succeeded")
    assert len(_rows(tmp_path / "out" / "errors.csv")) == 1


# ----------------------------------------------------------------------------- folder input, kill -9, resume


@pytest.fixture(scope="module")
def cohort_folder(shared_data, tmp_path_factory) -> Path:
    """A folder like a user's: two DICOM series in one flat study folder (identifiers planted), a NIfTI
    volume in a sub-folder, a 2D image (no spacing: an error row), a damaged .dcm, a text file and
    an earlier `analyze` output folder (ignored)."""
    from pydicom.uid import generate_uid

    from lumbarkit.io import load_scan
    from lumbarkit.report.dicom import write_dicom_series

    root = tmp_path_factory.mktemp("batch_folder") / "cohort"
    study = root / "Batchtest_Planted" / "study"
    study_uid = generate_uid()
    for number, case in ((1, "ivd_20"), (2, "ivd_25")):
        write_dicom_series(load_scan(shared_data / "volumes" / f"{case}_image.nii.gz"), study, series_number=number,
                           series_description=f"T2 SAG {number}", patient=PATIENT, study_uid=study_uid)
    (root / "nifti").mkdir()
    (root / "nifti" / "case42.nii.gz").write_bytes((shared_data / "volumes" / "ivd_42_image.nii.gz").read_bytes())
    _noise_png(root / "nifti" / "slice.png")
    (root / "broken").mkdir()
    (root / "broken" / "IM0001.dcm").write_bytes(b"\0" * 200)
    (root / "notes.txt").write_text("not a scan\n")
    old = root / "old_analyze_output"
    old.mkdir()
    for name in ("result.json", "report.html"):
        (old / name).write_text("{}")
    (old / "segmentation.nii.gz").write_bytes((shared_data / "volumes" / "ivd_11_label.nii.gz").read_bytes())
    return root


def test_folder_discovery(cohort_folder, tmp_path):
    from lumbarkit.batch import discover_jobs

    found = discover_jobs(cohort_folder, tmp_path / "out")
    by_display = {}
    for job in found.jobs:
        by_display.setdefault(job.display, []).append(job)
    assert sorted(by_display) == ["Batchtest_Planted/study", "broken/IM0001.dcm", "nifti/case42.nii.gz", "nifti/slice.png"]
    (study,) = by_display["Batchtest_Planted/study"]  # the two series of one study are one job
    dicom = study.parts
    assert len(dicom) == 2 and len({j.series for j in dicom}) == 2 and all(len(j.files) == 22 for j in dicom)
    assert study.error is None and all(j.error is None for j in dicom) and by_display["nifti/case42.nii.gz"][0].error is None
    assert "spacing" in by_display["nifti/slice.png"][0].error and "damaged" in by_display["broken/IM0001.dcm"][0].error
    assert found.ignored_files == 1  # notes.txt; the old analyze output is not searched
    assert all(len(j.id) == 12 and "Batchtest" not in j.id for j in found.jobs)
    assert [j.id for j in discover_jobs(cohort_folder).jobs] == [j.id for j in found.jobs]  # stable ids


def test_kill_9_then_rerun_completes_every_series_once(cohort_folder, tmp_path):
    out = tmp_path / "out"
    args = [sys.executable, "-m", "lumbarkit", "batch", str(cohort_folder), "-o", str(out), "--workers", "1", "--no-hotspots"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while not list(out.glob(f"*/{MARKER}")):
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no series completed in time"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI, the Dask scheduler and its worker processes
        proc.communicate()
    done_before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob(f"*/{MARKER}")}
    assert len(done_before) == 1, done_before  # killed mid-way (2 analysable inputs: the study and the NIfTI)
    # what a kill can leave behind: a half-written series folder and temporary files
    (out / f"{TMP_PREFIX}planted-0000").mkdir()
    (out / f"{TMP_PREFIX}planted-0000" / "levels.csv").write_text("level\n")
    (out / next(iter(done_before)) / f"{TMP_PREFIX}abc.csv").write_text("half")

    rerun = _cli("batch", cohort_folder, "-o", out, "--workers", "1", "--no-hotspots")
    assert rerun.returncode == 3, rerun.stderr  # the PNG and the damaged file fail
    assert f"{len(done_before)} already complete" in rerun.stdout and "2 failed" in rerun.stdout  # the PNG, the damaged file
    complete = sorted(p.parent.name for p in out.glob(f"*/{MARKER}"))
    assert len(complete) == 2
    assert {sid: (out / sid / MARKER).stat().st_mtime_ns for sid in done_before} == done_before  # not redone
    series_dirs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert series_dirs == complete  # no half-written or temporary folder left
    assert _leftovers(out) == []
    cohort = _rows(out / "cohort.csv")
    for sid in complete:
        json.loads((out / sid / "result.json").read_text())
        assert (out / sid / "segmentation.nii.gz").is_file()
        assert [r["level"] for r in cohort if r["series_id"] == sid] == [r["level"] for r in _rows(out / sid / "levels.csv")]
    assert sorted({r["series_id"] for r in cohort}) == complete
    index = {r["series_id"]: r for r in _rows(out / "index.csv")}
    assert sorted(r["input"] for r in index.values() if r["status"] == "complete") == ["Batchtest_Planted/study", "nifti/case42.nii.gz"]
    for f in out.rglob("*"):  # the planted patient identifiers reach no output
        if f.is_file() and f.suffix in (".json", ".csv", ".html") and f.name != "index.csv":
            assert PATIENT["PatientID"] not in f.read_text() and "Planted" not in f.read_text(), f


def test_manifest_checks(tmp_path):
    from lumbarkit.batch import read_manifest
    from lumbarkit.errors import InputError

    _noise_png(tmp_path / "a.png")
    m = tmp_path / "m.csv"
    m.write_text("input,id\na.png,x\n")
    job, = read_manifest(m)
    assert job.id == "x" and "spacing" in job.error  # a 2D image needs its spacing: an error row, not an abort
    m.write_text("input,spacing_row_mm,spacing_col_mm,series,site\na.png,0.5,0.5,,A\nmissing.nii.gz,,,,B\n\n")
    ok, missing = read_manifest(m)
    assert ok.error is None and ok.spacing_mm == (0.5, 0.5) and len(ok.id) == 12
    assert missing.error == "input not found: missing.nii.gz"
    for text, needle in (("path\na.png\n", "'input' column"), ("input,id\na.png,x\na.png,x\n", "two inputs"),
                         ("input,id\na.png,../up\n", "cannot name"), ("input,id\na.png,cohort.csv\n", "cannot name")):
        m.write_text(text)
        with pytest.raises(InputError, match=needle):
            from lumbarkit.batch import discover_jobs

            discover_jobs(m)


def test_a_stage_crash_is_an_error_row_with_a_traceback(monkeypatch, tmp_path):
    from lumbarkit.batch import Job, run_job, worker
    from lumbarkit.pipeline import PipelineConfig

    class Crashing:
        def analyze(self, *args, **kwargs):
            raise ZeroDivisionError("measure\nstage broke")

    config = PipelineConfig(hotspots=False, tta=False)
    monkeypatch.setitem(worker._PIPELINES, config, Crashing())
    outcome = run_job(Job("x1", str(tmp_path / "in.nii.gz"), "in.nii.gz"), str(tmp_path), config)
    assert not outcome.ok and outcome.reason.startswith("unexpected ZeroDivisionError: measure stage broke")
    assert "Traceback" in outcome.traceback and list(tmp_path.iterdir()) == []


CRASH_SCRIPT = """
import os, sys
from dataclasses import replace
import lumbarkit.batch as b
import lumbarkit.batch.run as batch_run
from lumbarkit.pipeline import PipelineConfig

def crashing(job, outdir, config, timeout_s=None, options=None):  # defined in __main__: shipped to the workers by value
    if job.id == "boom":
        os._exit(3)  # the worker process dies, as on a native crash or the OOM killer
    from lumbarkit.batch import run_job
    return run_job(job, outdir, config, timeout_s, options)

if __name__ == "__main__":
    batch_run.run_job = crashing  # the client submits batch.run.run_job to the workers
    good = b.read_manifest(sys.argv[1])[0]
    jobs = [good, replace(good, id="boom")]
    events = []
    s = b.run_batch(jobs, sys.argv[2], workers=2, config=PipelineConfig(hotspots=False), on_progress=events.append)
    print(s.line())
    print("events", [(e.total, e.done, e.failed, bool(e.message)) for e in events])
"""


def test_a_dying_worker_process_is_an_error_row(manifest, tmp_path):
    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(manifest), str(tmp_path / "out")], capture_output=True,
                          text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "1 analysed" in proc.stdout and "1 failed" in proc.stdout
    events = proc.stdout.split("events ")[1].strip()  # progress: the plan first, then one event per finished series
    assert events.startswith("[(2, 0, 0, True)") and events.endswith("(2, 2, 1, False)]")
    row, = _rows(tmp_path / "out" / "errors.csv")
    assert row["series_id"] == "boom" and "worker process died" in row["reason"]
    assert (tmp_path / "out" / "spider_1_t2" / MARKER).is_file()


def test_folder_and_manifest_give_the_same_ids(cohort_folder):
    from lumbarkit.batch import discover_jobs

    folder_jobs = [j for j in discover_jobs(cohort_folder).jobs if j.error is None]
    manifest = cohort_folder.parent / "same.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["input", "series", "study"])
        for job in folder_jobs:  # a study's series share a study value
            w.writerows([f"cohort/{p.display}", p.series or "", job.id if job.parts else ""] for p in (job.parts or (job,)))
    from_manifest = discover_jobs(manifest).jobs
    assert len(from_manifest) == 2 and all(j.error is None for j in from_manifest) and sum(bool(j.parts) for j in from_manifest) == 1
    assert {j.id for j in from_manifest} != {j.id for j in folder_jobs}  # paths are relative to different roots
    manifest = cohort_folder / "same.csv"  # beside the folder's contents: same relative paths, same ids
    manifest.write_text((cohort_folder.parent / "same.csv").read_text().replace("cohort/", ""))
    try:
        assert {j.id for j in discover_jobs(manifest).jobs} == {j.id for j in folder_jobs}
    finally:
        manifest.unlink()


STUCK_SCRIPT = """
import sys, time
from dataclasses import replace
import lumbarkit.batch as b
import lumbarkit.batch.run as batch_run
from lumbarkit.pipeline import PipelineConfig

def stuck(job, outdir, config, timeout_s=None, options=None):  # defined in __main__: shipped to the workers by value
    import lumbarkit.batch.worker as lb
    if job.id == "stuck":
        class Hang:
            def analyze(self, *args, **kwargs):
                time.sleep(3600)  # as a stuck read or a native call that never returns
        config = replace(config, tta=not config.tta)  # a pipeline of its own: the good series is untouched
        lb._PIPELINES[config] = Hang()
    return lb.run_job(job, outdir, config, timeout_s, options)

if __name__ == "__main__":
    batch_run.run_job = stuck
    good = b.read_manifest(sys.argv[1])[0]
    s = b.run_batch([good, replace(good, id="stuck")], sys.argv[2], workers=2, config=PipelineConfig(hotspots=False),
                    timeout_s=12)
    print(s.line())
"""


def test_a_stuck_series_times_out_and_the_batch_goes_on(manifest, tmp_path):
    script = tmp_path / "stuck.py"
    script.write_text(STUCK_SCRIPT)
    t0 = time.time()
    proc = subprocess.run([sys.executable, str(script), str(manifest), str(tmp_path / "out")], capture_output=True,
                          text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "1 analysed" in proc.stdout and "1 failed" in proc.stdout
    row, = _rows(tmp_path / "out" / "errors.csv")
    assert row["series_id"] == "stuck" and "timed out" in row["reason"] and "12 s" in row["reason"]
    assert (tmp_path / "out" / "spider_1_t2" / MARKER).is_file()
    assert _leftovers(tmp_path / "out") == []
    assert time.time() - t0 < 300


def test_timeout_must_be_positive(tmp_path):
    proc = _cli("batch", str(tmp_path), "-o", str(tmp_path / "out"), "--timeout", "0")
    assert proc.returncode != 0 and "--timeout must be a positive" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_ctrl_c_stops_cleanly_in_one_line(cohort_folder, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) mid-run: exit 130, one error line, no
    worker tracebacks; the workers ignore SIGINT and are stopped by the client."""
    args = [sys.executable, "-m", "lumbarkit", "batch", str(cohort_folder), "-o", str(tmp_path / "out"), "--workers", "2"]
    # as from a terminal: SIGINT at its default (a runner in the background may start us with it ignored)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stderr.readline()  # "N series: ... to analyse on 2 worker process(es)": the cluster is up
    assert "to analyse" in first, first
    time.sleep(1.0)  # the workers are analysing the first series
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: interrupted; run the same command again to resume"]
