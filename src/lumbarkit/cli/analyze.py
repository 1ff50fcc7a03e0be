"""``lumbarkit analyze``: every stage on one scan, with files for people and programs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lumbarkit.cli.main import app
from lumbarkit.cli.options import (
    LumbarOption,
    OverwriteOption,
    ProviderOption,
    SeriesOption,
    SpacingOption,
    spacing_tuple,
)
from lumbarkit.errors import InputError


def print_summary(result, outdir: Path, grades=None, warnings=None) -> None:
    """Levels, grades (``grades``: a study's fused grades) and warnings as a rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    grades = grades if grades is not None else result.grades
    graded = {d.level: d for d in grades.discs} if grades is not None else {}
    table = Table(title=f"{len(result.levels.discs)} discs, {len(result.levels.vertebrae)} vertebrae")
    for col in ("level", "conf.", "Pfirrmann", "LDD", "Modic", "disc height mm", "slip %"):
        table.add_column(col)
    for inst in result.levels.discs:
        g = graded.get(inst.name)
        d = result.measurements.disc(inst.name)
        table.add_row(
            inst.name, f"{inst.confidence:.2f}",
            str(g.grades.get("pfirrmann", "")) if g else "", g.ldd if g else "", str(g.grades.get("modic", "")) if g else "",
            f"{d.height_middle.value:.1f}" if d is not None and d.height_middle.ok else "",
            f"{d.slip_percent.value:+.0f}" if d is not None and d.slip_percent.ok else "",
        )
    console.print(table)
    for w in (warnings if warnings is not None else result.warnings):
        console.print(f"[yellow]warning:[/yellow] {w}")


@app.command()
def analyze(
    inputs: list[Path] = typer.Argument(..., help="DICOM study folder or file, BIDS folder of NIfTI files, NIfTI, MHA/MHD, NRRD "
                                                 "or 2D image; several files (e.g. t1.nii.gz t2.nii.gz) form one study."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (created if missing)."),
    spacing: Optional[tuple[float, float]] = SpacingOption,
    series: Optional[str] = SeriesOption,
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of pipeline options (segment_model, grade_model, tta, hotspots, hotspot_tasks)."),
    no_hotspots: bool = typer.Option(False, "--no-hotspots", help="Skip the evidence hotspot maps (faster)."),
    dicom: bool = typer.Option(False, "--dicom", help="Also write a DICOM SEG and a DICOM SR (TID 1500) referencing the DICOM input. "
                                                    "They copy the patient and study module of the source series by necessity."),
    keep_phi: bool = typer.Option(False, "--keep-phi", help="Keep patient identifiers (name, ID, dates, accession, institution) in the outputs."),
    lumbar_vertebrae: Optional[int] = LumbarOption,
    provider: Optional[str] = ProviderOption,
    sequence: Optional[list[str]] = typer.Option(None, "--sequence", help="What each series is (T1, T2, T2_SPACE, STIR, PD), "
                                                 "one per series in order (repeat the option); wins over tags and file names."),
    overwrite: bool = OverwriteOption,
) -> None:
    """Segment, name levels, grade discs and measure a scan or a study (every sagittal series; one fused grade per disc)."""
    from dataclasses import replace

    from lumbarkit.cli.progress import StageStatus
    from lumbarkit.io.readers import is_dicom_path
    from lumbarkit.models.runtime import check_provider
    from lumbarkit.pipeline import Pipeline, PipelineConfig
    from lumbarkit.report.outfolder import check_output, staged_folder
    from lumbarkit.report.study_outputs import write_study_outputs
    from lumbarkit.study import analyze_study, find_study

    check_output(out, inputs, overwrite)  # before any work
    study = find_study(inputs, series, sequence)  # headers only
    if dicom and not any(is_dicom_path(r.source) and not r.source.name.lower().endswith((".nii", ".nii.gz")) for r in study.series):
        raise InputError("--dicom needs a DICOM input (the SEG and SR reference its series)")
    cfg = PipelineConfig.from_yaml(config) if config is not None else PipelineConfig()
    if no_hotspots:
        cfg = replace(cfg, hotspots=False)
    if lumbar_vertebrae is not None:
        cfg = replace(cfg, lumbar_vertebrae=lumbar_vertebrae)
    if provider is not None:
        cfg = replace(cfg, onnx_provider=check_provider(provider))
    with StageStatus() as status:
        result = analyze_study(study, Pipeline(cfg), keep_phi=keep_phi, on_stage=status.update, spacing_mm=spacing_tuple(spacing))
    with staged_folder(out, inputs) as tmp:
        paths = write_study_outputs(result, tmp, keep_phi=keep_phi, dicom=dicom)
    fused = result.fused.grades if result.fused is not None and not result.single else None
    print_summary(result.primary_result, out, grades=fused, warnings=result.warnings if not result.single else None)
    if not result.single:
        typer.echo(f"study: {len(result.analysed)} of {len(result.refs)} series analysed; grades fused by the "
                   f"{result.fused.model if result.fused is not None else 'none'}")
    typer.echo(f"report: {out / paths['report'].name}")
