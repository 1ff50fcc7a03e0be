"""Worker side of a batch: analyse one series into a temporary folder, publish it, report a :class:`JobOutcome`."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from lumbarkit.batch.cohort import MARKER
from lumbarkit.batch.inputs import Job
from lumbarkit.batch.outdir import remove_path
from lumbarkit.errors import LumbarkitError
from lumbarkit.pipeline import Pipeline, PipelineConfig
from lumbarkit.report.outputs import TMP_PREFIX

log = logging.getLogger(__name__)


THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                               "VECLIB_MAXIMUM_THREADS")}


REASON_CHARS = 300


def one_line(text: str, limit: int = REASON_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class JobOutcome:
    """What a worker reports back for one job."""

    id: str
    ok: bool
    reason: str = ""
    traceback: str = ""
    seconds: float = 0.0
    worker_pid: int = 0
    peak_rss_mb: float | None = None
    discs: int = 0


_PIPELINES: dict[PipelineConfig, Pipeline] = {}


_PIPELINE_LOCK = threading.Lock()


def limit_threads() -> None:
    """One compute thread per worker process: OpenMP/BLAS pools, torch (if loaded), threadpoolctl."""
    os.environ.update(THREAD_ENV)
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # only settable before the first parallel work
            pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def worker_pipeline(config: PipelineConfig) -> Pipeline:
    """This process's :class:`Pipeline` for ``config``, created (models loaded, 1 thread) on first use."""
    with _PIPELINE_LOCK:
        pipeline = _PIPELINES.get(config)
        if pipeline is None:
            limit_threads()
            pipeline = Pipeline(config, threads=1)
            _PIPELINES[config] = pipeline
    return pipeline


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MB (psutil where it knows the peak, else resource)."""
    try:
        import psutil

        info = psutil.Process().memory_info()
        peak = getattr(info, "peak_wset", None)  # Windows
        if peak is not None:
            return peak / 2**20
    except ImportError:
        psutil = None
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2**20 if sys.platform == "darwin" else rss / 2**10
    except ImportError:
        return psutil.Process().memory_info().rss / 2**20 if psutil is not None else None


@dataclass(frozen=True)
class OutputOptions:
    """What a job writes besides the ``analyze`` files: identifiers (``--keep-phi``), DICOM SEG/SR (``--dicom``,
    for DICOM series). Part of the completion marker: changing them redoes the job."""

    keep_phi: bool = False
    dicom: bool = False


def marker_document(job: Job, config: PipelineConfig, options: OutputOptions | None = None) -> dict:
    from lumbarkit.version import __version__

    return {"id": job.id, **job.key(), "lumbarkit_version": __version__, "config": asdict(config),
            "outputs": asdict(options or OutputOptions())}


def _series_view(job: Job, view: Path) -> str:
    """The path to analyse: for a DICOM series found by folder search, a folder of links to just its files."""
    if not job.files:
        return job.input
    try:
        view.mkdir(parents=True)  # parents: a study job's series views lie in one folder
        for i, f in enumerate(job.files):
            os.symlink(f, view / f"{i:06d}.dcm")
    except OSError:  # no symlinks here: read the folder holding the series
        return job.input
    return str(view)


def _run_study(job: Job, pipeline: Pipeline, tmp: Path, view: Path, options: OutputOptions) -> int:
    """Analyse a study job (its series together, as ``analyze`` does) into ``tmp``; returns the discs reported."""
    from lumbarkit.report.study_outputs import write_study_outputs
    from lumbarkit.study import SeriesRef, StudyInputs, analyze_study

    refs = tuple(SeriesRef(Path(_series_view(part, view / str(i))), part.series, "unknown", part.display)
                 for i, part in enumerate(job.parts))
    result = analyze_study(StudyInputs(refs, key=job.input), pipeline, keep_phi=options.keep_phi,
                           lumbar_vertebrae=job.lumbar_vertebrae)
    write_study_outputs(result, tmp, keep_phi=options.keep_phi, dicom=options.dicom)
    return len(result.to_dict()["levels"])


def publish(outdir: Path, job: Job, tmp: Path, config: PipelineConfig, options: OutputOptions | None = None) -> Path:
    """Move a finished temporary folder to ``outdir/<id>`` and write its completion marker last."""
    from lumbarkit.report.outputs import write_text

    final = outdir / job.id
    remove_path(final)  # an unfinished or superseded earlier attempt
    os.replace(tmp, final)
    write_text(final / MARKER, json.dumps(marker_document(job, config, options), indent=1, sort_keys=True) + "\n")
    return final


def timeout_note(outdir: Path, job_id: str) -> Path:
    """File a worker leaves when it gives up on ``job_id`` after the time limit (removed as stale by reruns)."""
    return outdir / f"{TMP_PREFIX}timeout-{job_id}"


def _give_up(out: Path, job: Job, tmp: Path, view: Path, timeout_s: float) -> None:
    """Time limit reached: note it for the client, clean up, and end this worker process (its nanny restarts it)."""
    try:
        timeout_note(out, job.id).write_text(f"{timeout_s:g}\n")
        remove_path(tmp)
        remove_path(view)
    finally:
        os._exit(70)


def run_job(job: Job, outdir: str, config: PipelineConfig, timeout_s: float | None = None,
            options: OutputOptions | None = None) -> JobOutcome:
    """Analyse one series and publish its folder; every error is caught and reported.

    With ``timeout_s`` a series still running after that many seconds ends the worker process
    (nothing else can stop a stuck native call); the client reports it as timed out."""
    from lumbarkit.report.outputs import write_outputs

    t0 = time.perf_counter()
    out = Path(outdir)
    token = f"{TMP_PREFIX}{job.id}-{uuid.uuid4().hex[:8]}"
    tmp, view = out / token, out / f"{token}.view"
    outcome = JobOutcome(job.id, False, worker_pid=os.getpid())
    watchdog = None
    if timeout_s:
        watchdog = threading.Timer(timeout_s, _give_up, args=(out, job, tmp, view, timeout_s))
        watchdog.daemon = True
        watchdog.start()
    try:
        pipeline = worker_pipeline(config)
        options = options or OutputOptions()
        if job.parts:
            outcome.discs = _run_study(job, pipeline, tmp, view, options)
        else:
            source = _series_view(job, view)
            result = pipeline.analyze(source, spacing_mm=job.spacing_mm, series=job.series, keep_phi=options.keep_phi,
                                      lumbar_vertebrae=job.lumbar_vertebrae)
            dicom = options.dicom and result.scan.metadata.source_format == "dicom"
            write_outputs(result, tmp, keep_phi=options.keep_phi, dicom_source=Path(source) if dicom else None)
            outcome.discs = len(result.levels.discs)
        publish(out, job, tmp, config, options)
        outcome.ok = True
    except LumbarkitError as exc:
        outcome.reason = one_line(str(exc))
    except Exception as exc:  # a stage crashed: report it, keep the batch going
        outcome.reason = one_line(f"unexpected {type(exc).__name__}: {exc}" + " (traceback in errors.log)")
        outcome.traceback = traceback.format_exc()
    finally:
        if watchdog is not None:
            watchdog.cancel()
        remove_path(tmp)
        remove_path(view)
    if not outcome.ok and not (out / job.id / MARKER).exists():
        remove_path(out / job.id)
    outcome.seconds = time.perf_counter() - t0
    outcome.peak_rss_mb = peak_rss_mb()
    return outcome
