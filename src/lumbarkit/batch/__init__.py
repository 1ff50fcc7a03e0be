"""``lumbarkit batch``: analyse a cohort on Dask, resumable, with nothing lost.

Layout of OUTDIR::

    .lumbarkit-batch          marks a batch output folder (and is locked while a batch runs)
    <id>/                     the files of ``lumbarkit analyze`` for one series, then .complete
    cohort.csv, cohort.parquet, vertebrae.csv, errors.csv, index.csv, cohort_*.png

How nothing is lost or half-written:

* a worker writes a series into ``OUTDIR/.lumbarkit-tmp-<id>-<random>/``, renames that folder to
  ``OUTDIR/<id>/`` and then writes ``OUTDIR/<id>/.complete`` (atomically): only a folder with
  the marker counts as done;
* a rerun removes stale temporary folders and files, skips ids whose marker names the same
  input, and redoes everything else (``resume=False`` redoes everything);
* any error of one series (unreadable file, not a spine, a stage crashing, even a worker process
  dying) becomes a row of ``errors.csv`` and the batch goes on;
* the cohort files are rebuilt at the end of every run from every complete series folder,
  including series completed by earlier runs, sorted by series id and level.

Workers: a :class:`distributed.LocalCluster` of single-threaded worker processes (OpenMP/BLAS
and ONNX Runtime limited to one thread each), or the workers of a running scheduler, which must
see INPUT and OUTDIR at the same paths. Each worker process keeps one :class:`Pipeline` per
configuration, so models are loaded once per process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lumbarkit.batch.cohort import (
    ERRORS_CSV,
    MARKER,
    Cohort,
    read_marker,
    write_cohort,
    write_errors,
    write_index,
)
from lumbarkit.batch.inputs import (
    OUTDIR_MARKER,
    Discovery,
    Job,
    discover_jobs,
    read_manifest,
)
from lumbarkit.errors import InputError, LumbarkitError
from lumbarkit.pipeline import Pipeline, PipelineConfig
from lumbarkit.report.outputs import TMP_PREFIX

log = logging.getLogger(__name__)

THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                               "VECLIB_MAXIMUM_THREADS")}
REASON_CHARS = 300
ALLOWED_FAILURES = 1  # a task that kills a worker process is retried once, then becomes an error row


def default_workers() -> int:
    """CPUs this process may use (the size of the local cluster when --workers is not given)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def one_line(text: str, limit: int = REASON_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ============================================================================ worker side


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


def marker_document(job: Job, config: PipelineConfig) -> dict:
    from lumbarkit.version import __version__

    return {"id": job.id, **job.key(), "lumbarkit_version": __version__, "config": asdict(config)}


def _series_view(job: Job, view: Path) -> str:
    """The path to analyse: for a DICOM series found by folder search, a folder of links to just its files."""
    if not job.files:
        return job.input
    try:
        view.mkdir(parents=True)
        for i, f in enumerate(job.files):
            os.symlink(f, view / f"{i:06d}.dcm")
    except OSError:  # no symlinks here: read the folder holding the series
        return job.input
    return str(view)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def publish(outdir: Path, job: Job, tmp: Path, config: PipelineConfig) -> Path:
    """Move a finished temporary folder to ``outdir/<id>`` and write its completion marker last."""
    from lumbarkit.report.outputs import write_text

    final = outdir / job.id
    _remove(final)  # an unfinished or superseded earlier attempt
    os.replace(tmp, final)
    write_text(final / MARKER, json.dumps(marker_document(job, config), indent=1, sort_keys=True) + "\n")
    return final


def timeout_note(outdir: Path, job_id: str) -> Path:
    """File a worker leaves when it gives up on ``job_id`` after the time limit (removed as stale by reruns)."""
    return outdir / f"{TMP_PREFIX}timeout-{job_id}"


def _give_up(out: Path, job: Job, tmp: Path, view: Path, timeout_s: float) -> None:
    """Time limit reached: note it for the client, clean up, and end this worker process (its nanny restarts it)."""
    try:
        timeout_note(out, job.id).write_text(f"{timeout_s:g}\n")
        _remove(tmp)
        _remove(view)
    finally:
        os._exit(70)


def run_job(job: Job, outdir: str, config: PipelineConfig, timeout_s: float | None = None) -> JobOutcome:
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
        result = pipeline.analyze(_series_view(job, view), spacing_mm=job.spacing_mm, series=job.series)
        write_outputs(result, tmp)
        publish(out, job, tmp, config)
        outcome.ok, outcome.discs = True, len(result.levels.discs)
    except LumbarkitError as exc:
        outcome.reason = one_line(str(exc))
    except Exception as exc:  # a stage crashed: report it, keep the batch going
        outcome.reason = one_line(f"unexpected {type(exc).__name__}: {exc}" + " (traceback in errors.log)")
        outcome.traceback = traceback.format_exc()
    finally:
        if watchdog is not None:
            watchdog.cancel()
        _remove(tmp)
        _remove(view)
    if not outcome.ok and not (out / job.id / MARKER).exists():
        _remove(out / job.id)
    outcome.seconds = time.perf_counter() - t0
    outcome.peak_rss_mb = peak_rss_mb()
    return outcome


# ============================================================================ client side


@dataclass
class BatchSummary:
    """What a batch run did."""

    outdir: Path
    jobs: int = 0
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # series_id, input, series, reason
    outcomes: list[JobOutcome] = field(default_factory=list)
    cohort: Cohort = field(default_factory=Cohort)
    workers: int = 0
    timings_s: dict = field(default_factory=dict)  # startup, analysis, cohort, total
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        """Series of this run's inputs that are complete (analysed now or in an earlier run)."""
        return len(self.done) + len(self.skipped)

    def line(self) -> str:
        text = f"batch: {len(self.done)} analysed, {len(self.skipped)} already complete, {len(self.errors)} failed"
        if self.errors:
            text += f" (see {self.outdir / ERRORS_CSV})"
        return text + f"; cohort of {self.cohort.series} series, {self.cohort.discs} discs: {self.outdir / 'cohort.csv'}"


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
        _remove(p)
    return len(stale)


def is_complete(outdir: Path, job: Job) -> bool:
    marker = read_marker(outdir, job.id)
    return marker is not None and all(marker.get(k) == v for k, v in job.key().items())


def unpublish(outdir: Path, job_id: str) -> None:
    """Make an earlier output of ``job_id`` incomplete before redoing it (marker first)."""
    (outdir / job_id / MARKER).unlink(missing_ok=True)


@contextmanager
def dask_client(workers: int, scheduler: str | None):
    """A Dask client: of a new local cluster of ``workers`` single-threaded processes, or of ``scheduler``."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("lumbarkit batch needs the [batch] extra: pip install 'lumbarkit[batch]'") from None
    quiet = [logging.getLogger(n) for n in ("distributed", "tornado", "asyncio")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(f"cannot connect to the Dask scheduler at {scheduler}: {one_line(str(exc), 160)}") from None
            try:
                client.wait_for_workers(1, timeout=120)
            except TimeoutError:
                client.close()
                raise InputError(f"the Dask scheduler at {scheduler} has no workers") from None
            with client:
                yield client
        else:
            with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}), \
                    LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                 silence_logs=logging.CRITICAL, env=dict(THREAD_ENV)) as cluster, Client(cluster) as client:
                yield client
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)


def _death_reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return "the worker process died while analysing this series (out of memory, or a crash in a native library)"
    return one_line(f"the batch lost this series: {name}: {exc}")


def _progress(console, enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console, disable=not enabled, transient=False)


def run_batch(jobs: list[Job], outdir: str | Path, *, workers: int | None = None, scheduler: str | None = None,
              resume: bool = True, config: PipelineConfig | None = None, progress: bool = True,
              console=None, timeout_s: float | None = None) -> BatchSummary:
    """Analyse ``jobs`` into ``outdir`` on Dask and rebuild the cohort files; see the module docstring.

    ``timeout_s`` limits the seconds one series may take (None: no limit); a series over the limit
    is tried once more on a fresh worker process, then becomes an error row.

    Raises
    ------
    InputError : OUTDIR is locked by another batch, the scheduler is unreachable, or dask is missing.
    ModelError : a configured model folder is missing or corrupt (checked before any worker starts).
    """
    from rich.console import Console

    t_start = time.perf_counter()
    config = config or PipelineConfig()
    console = console or Console(stderr=True)
    outdir = Path(outdir).resolve()
    summary = BatchSummary(outdir, jobs=len(jobs))
    with outdir_lock(outdir):
        if clean_stale(outdir):
            log.info("removed temporary files of an interrupted run in %s", outdir)
        pending: list[Job] = []
        for job in jobs:
            if resume and is_complete(outdir, job):
                summary.skipped.append(job.id)
                continue
            unpublish(outdir, job.id)
            if job.error:
                _remove(outdir / job.id)
                summary.errors.append({"series_id": job.id, "input": job.display, "series": job.series or "", "reason": job.error})
            else:
                pending.append(job)
        tracebacks: dict[str, str] = {}
        if pending:
            _check_models(config)
            summary.workers = min(workers or default_workers(), len(pending)) if not scheduler else 0
            where = f"on {scheduler}" if scheduler else f"on {summary.workers} worker process(es)"
            console.print(f"{len(jobs)} series: {len(summary.skipped)} already complete, {len(summary.errors)} unusable, "
                          f"{len(pending)} to analyse {where}")
            t = time.perf_counter()
            with dask_client(summary.workers, scheduler) as client:
                summary.timings_s["startup"] = time.perf_counter() - t
                t = time.perf_counter()
                _run_pending(client, pending, outdir, config, summary, tracebacks, console, progress, timeout_s)
                summary.timings_s["analysis"] = time.perf_counter() - t
        t = time.perf_counter()
        summary.cohort = write_cohort(outdir)
        write_errors(outdir, summary.errors, tracebacks)
        write_index(outdir, summary.errors)
        summary.timings_s["cohort"] = time.perf_counter() - t
    summary.notes += summary.cohort.notes
    summary.timings_s["total"] = time.perf_counter() - t_start
    return summary


def _check_models(config: PipelineConfig) -> None:
    """Fail fast (before starting workers) on a missing or corrupt model folder."""
    pipeline = Pipeline(config)
    pipeline.segmenter  # noqa: B018 - loads and verifies the folder
    pipeline.grader  # noqa: B018


def _run_pending(client, pending: list[Job], outdir: Path, config: PipelineConfig, summary: BatchSummary,
                 tracebacks: dict[str, str], console, progress: bool, timeout_s: float | None = None) -> None:
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    futures = [client.submit(run_job, job, str(outdir), config, timeout_s, key=f"lumbarkit-{job.id}-{run}", pure=False)
               for job in pending]
    by_key = {f.key: job for f, job in zip(futures, pending)}
    with _progress(console, progress) as bar:
        task = bar.add_task("analysing", total=len(futures), failed=0)
        for future in as_completed(futures):
            job = by_key[future.key]
            try:
                outcome = future.result()
            except Exception as exc:  # the worker died (KilledWorker, also after a time-out) or the task was lost
                note = timeout_note(outdir, job.id)
                if note.exists():
                    outcome = JobOutcome(job.id, False, f"timed out: still running after {note.read_text().strip()} s "
                                                        "(twice; see --timeout); its worker process was restarted")
                else:
                    outcome = JobOutcome(job.id, False, _death_reason(exc))
            timeout_note(outdir, job.id).unlink(missing_ok=True)  # also after a retry that made it in time
            future.release()
            summary.outcomes.append(outcome)
            if outcome.ok:
                summary.done.append(job.id)
            else:
                summary.errors.append({"series_id": job.id, "input": job.display, "series": job.series or "", "reason": outcome.reason})
                if outcome.traceback:
                    tracebacks[job.id] = outcome.traceback
            bar.update(task, advance=1, failed=len([o for o in summary.outcomes if not o.ok]))


__all__ = [
    "BatchSummary",
    "Discovery",
    "Job",
    "JobOutcome",
    "default_workers",
    "discover_jobs",
    "read_manifest",
    "run_batch",
    "run_job",
    "worker_pipeline",
]
