"""``lumbarkit batch``: every series of a cohort on Dask, resumable; per-series folders plus cohort tables and cohort.html."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from lumbarkit.cli.main import app
from lumbarkit.cli.options import ProviderOption

EXIT_NONE_SUCCEEDED = 1  # no series could be analysed
EXIT_SOME_FAILED = 3  # the cohort files hold the others; errors.csv says why


@app.command()
def batch(
    input: Path = typer.Argument(..., help="Folder searched recursively for scans (DICOM series, NIfTI, MHA/MHD, NRRD) "
                                           "or a manifest CSV with columns input, id, spacing_row_mm, spacing_col_mm, series."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder: one sub-folder per series plus the cohort files (created if missing)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Worker processes of the local Dask cluster (default: the number of CPUs)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Use a running Dask scheduler (tcp://host:port) instead of a local cluster; "
                                                                      "its workers must see INPUT and OUT at the same paths."),
    no_resume: bool = typer.Option(False, "--no-resume", help="Redo series already complete in OUT (default: skip them)."),
    no_hotspots: bool = typer.Option(False, "--no-hotspots", help="Skip the evidence hotspot maps (faster)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of pipeline options (segment_model, grade_model, tta, hotspots, hotspot_tasks)."),
    dicom: bool = typer.Option(False, "--dicom", help="Also write a DICOM SEG and SR for every DICOM series (and study) "
                                                    "referencing its source series, as `analyze --dicom` does."),
    keep_phi: bool = typer.Option(False, "--keep-phi", help="Keep patient identifiers in the outputs, as `analyze --keep-phi` does."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds one series may take (e.g. 600); a series still running is "
                                                                    "retried once on a fresh worker, then reported in errors.csv. Default: no limit."),
    provider: Optional[str] = ProviderOption,
) -> None:
    """Analyse every series of a folder or manifest in parallel; writes OUT/<id>/ like `analyze` plus
    cohort.csv/.parquet, vertebrae.csv, errors.csv, index.csv, summary plots and cohort.html. A rerun resumes."""
    from dataclasses import replace

    from rich.console import Console

    from lumbarkit.batch import discover_jobs, run_batch
    from lumbarkit.batch.worker import OutputOptions
    from lumbarkit.cli.progress import ProgressBar
    from lumbarkit.errors import InputError
    from lumbarkit.pipeline import PipelineConfig

    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if timeout is not None and not timeout > 0:
        raise InputError(f"--timeout must be a positive number of seconds, got {timeout}")
    if workers is not None and scheduler:
        raise InputError("--workers sizes a local cluster; with --scheduler the scheduler's workers are used")
    if input.exists() and out.exists() and input.resolve() == out.resolve():
        raise InputError("the output folder must not be the input folder: choose another -o")
    cfg = PipelineConfig.from_yaml(config) if config is not None else PipelineConfig()
    if no_hotspots:
        cfg = replace(cfg, hotspots=False)
    if provider is not None:
        from lumbarkit.models.runtime import check_provider

        cfg = replace(cfg, onnx_provider=check_provider(provider))
    console = Console(stderr=True)
    found = discover_jobs(input, out)
    if not found.jobs:
        raise InputError(f"no scans found in {input} ({found.ignored_files} other file(s) ignored)")
    for note in found.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    try:
        with ProgressBar(console) as bar:
            summary = run_batch(found.jobs, out, workers=workers, scheduler=scheduler, resume=not no_resume, config=cfg,
                                on_progress=bar.update, timeout_s=timeout, options=OutputOptions(keep_phi=keep_phi, dicom=dicom))
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to resume", file=sys.stderr)
        sys.exit(130)
    for note in summary.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    typer.echo(summary.line())
    if summary.succeeded == 0:
        print(f"error: no series succeeded ({len(summary.errors)} failed): see {out / 'errors.csv'}", file=sys.stderr)
        sys.exit(EXIT_NONE_SUCCEEDED)  # typer.Exit would be swallowed by run()'s standalone_mode=False
    if summary.errors:
        print(f"warning: {len(summary.errors)} series failed: see {out / 'errors.csv'}", file=sys.stderr)
        sys.exit(EXIT_SOME_FAILED)
