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

Modules: :mod:`.inputs` (find series, read manifests), :mod:`.worker` (one series on a worker),
:mod:`.outdir` (lock, markers, stale files), :mod:`.run` (the Dask client side, progress events)
and :mod:`.cohort` (cohort tables and plots).
"""

from lumbarkit.batch.inputs import Discovery, Job, discover_jobs, read_manifest
from lumbarkit.batch.run import BatchProgress, BatchSummary, default_workers, run_batch
from lumbarkit.batch.worker import JobOutcome, peak_rss_mb, run_job, worker_pipeline

__all__ = ["BatchProgress", "BatchSummary", "Discovery", "Job", "JobOutcome", "default_workers", "discover_jobs",
           "peak_rss_mb", "read_manifest", "run_batch", "run_job", "worker_pipeline"]
