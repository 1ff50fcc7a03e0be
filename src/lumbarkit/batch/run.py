"""Client side of a batch: a Dask cluster runs every pending series; progress goes to a callback."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from lumbarkit.batch.cohort import (
    ERRORS_CSV,
    Cohort,
    write_cohort,
    write_errors,
    write_index,
)
from lumbarkit.batch.cohort_html import write_cohort_html
from lumbarkit.batch.inputs import Job
from lumbarkit.batch.outdir import (
    clean_stale,
    is_complete,
    outdir_lock,
    remove_path,
    unpublish,
)
from lumbarkit.batch.worker import (
    THREAD_ENV,
    JobOutcome,
    OutputOptions,
    one_line,
    run_job,
    timeout_note,
)
from lumbarkit.errors import InputError
from lumbarkit.pipeline import Pipeline, PipelineConfig

log = logging.getLogger(__name__)

ALLOWED_FAILURES = 1  # a task that kills a worker process is retried once, then becomes an error row


def default_workers() -> int:
    """CPUs this process may use (the size of the local cluster when --workers is not given)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


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
def _workers_ignore_ctrl_c():
    """While the local cluster starts, SIGINT is ignored: the worker processes inherit that (Python then installs
    no KeyboardInterrupt handler in them), so Ctrl-C reaches only this process, which stops the cluster and says
    one line, instead of every worker printing a traceback. A Ctrl-C during those seconds of start-up is lost."""
    import signal
    import threading

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if threading.current_thread() is threading.main_thread() else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


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
            with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
                with _workers_ignore_ctrl_c():  # only while the worker processes start
                    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                           silence_logs=logging.CRITICAL, env=dict(THREAD_ENV))
                with cluster, Client(cluster) as client:
                    yield client
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)


def _death_reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return "the worker process died while analysing this series (out of memory, or a crash in a native library)"
    return one_line(f"the batch lost this series: {name}: {exc}")


@dataclass(frozen=True)
class BatchProgress:
    """A progress event of :func:`run_batch`: ``message`` once before the analysis starts (done = 0), then one
    event per finished series with the running counts."""

    total: int
    done: int = 0
    failed: int = 0
    message: str = ""


ProgressCallback = Callable[[BatchProgress], None]


def run_batch(jobs: list[Job], outdir: str | Path, *, workers: int | None = None, scheduler: str | None = None,
              resume: bool = True, config: PipelineConfig | None = None, on_progress: ProgressCallback | None = None,
              timeout_s: float | None = None, options: OutputOptions | None = None) -> BatchSummary:
    """Analyse ``jobs`` into ``outdir`` on Dask and rebuild the cohort files; see the module docstring.

    ``timeout_s`` limits the seconds one series may take (None: no limit); a series over the limit
    is tried once more on a fresh worker process, then becomes an error row. ``on_progress`` receives a
    :class:`BatchProgress` before the analysis and after every finished series (the CLI draws a bar).
    ``options`` (:class:`OutputOptions`: ``--keep-phi``, ``--dicom``) are part of what makes an output complete.

    Raises
    ------
    InputError : OUTDIR is locked by another batch, the scheduler is unreachable, or dask is missing.
    ModelError : a configured model folder is missing or corrupt (checked before any worker starts).
    """
    t_start = time.perf_counter()
    config = config or PipelineConfig()
    options = options or OutputOptions()
    report = on_progress or (lambda event: None)
    outdir = Path(outdir).resolve()
    summary = BatchSummary(outdir, jobs=len(jobs))
    with outdir_lock(outdir):
        if clean_stale(outdir):
            log.info("removed temporary files of an interrupted run in %s", outdir)
        pending: list[Job] = []
        for job in jobs:
            if resume and is_complete(outdir, job, json.loads(json.dumps(asdict(config))), asdict(options)):  # as the marker stores it
                summary.skipped.append(job.id)
                continue
            unpublish(outdir, job.id)
            if job.error:
                remove_path(outdir / job.id)
                summary.errors.append({"series_id": job.id, "input": job.display, "series": job.series or "", "reason": job.error})
            else:
                pending.append(job)
        tracebacks: dict[str, str] = {}
        if pending:
            _check_models(config)
            summary.workers = min(workers or default_workers(), len(pending)) if not scheduler else 0
            where = f"on {scheduler}" if scheduler else f"on {summary.workers} worker process(es)"
            t = time.perf_counter()
            with dask_client(summary.workers, scheduler) as client:
                summary.timings_s["startup"] = time.perf_counter() - t
                # said once the workers run (and Ctrl-C reaches this process again)
                report(BatchProgress(len(pending), message=f"{len(jobs)} series: {len(summary.skipped)} already complete, "
                                                           f"{len(summary.errors)} unusable, {len(pending)} to analyse {where}"))
                t = time.perf_counter()
                _run_pending(client, pending, outdir, config, summary, tracebacks, report, timeout_s, options)
                summary.timings_s["analysis"] = time.perf_counter() - t
        t = time.perf_counter()
        summary.cohort = write_cohort(outdir)
        write_errors(outdir, summary.errors, tracebacks)
        write_index(outdir, summary.errors)
        summary.cohort.files["html"] = write_cohort_html(outdir)
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
                 tracebacks: dict[str, str], report: ProgressCallback, timeout_s: float | None = None,
                 options: OutputOptions | None = None) -> None:
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    futures = [client.submit(run_job, job, str(outdir), config, timeout_s, options, key=f"lumbarkit-{job.id}-{run}", pure=False)
               for job in pending]
    by_key = {f.key: job for f, job in zip(futures, pending)}
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
        report(BatchProgress(len(futures), len(summary.outcomes), sum(not o.ok for o in summary.outcomes)))
