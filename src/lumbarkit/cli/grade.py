"""``lumbarkit grade``, ``lumbarkit train grade`` and ``lumbarkit evaluate grade``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lumbarkit.cli.main import app, evaluate_app, train_app
from lumbarkit.cli.options import (
    LumbarOption,
    OverwriteOption,
    SeriesOption,
    SpacingOption,
    require_training_extra,
    spacing_tuple,
)
from lumbarkit.errors import LumbarkitError


@app.command()
def grade(
    input: Path = typer.Argument(..., help="DICOM folder/file, NIfTI, MHA/MHD, NRRD or 2D image."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (levels.csv is written there)."),
    spacing: Optional[tuple[float, float]] = SpacingOption,
    series: Optional[str] = SeriesOption,
    model: Optional[Path] = typer.Option(None, "--model", help="Grader model folder (default: the packaged model)."),
    tta: bool = typer.Option(True, "--tta/--no-tta", help="Average over test-time augmented copies of each crop."),
    hotspots: Optional[str] = typer.Option(None, "--hotspots", help="Also write evidence maps OUT/hotspots/<level>_<task>.png: "
                                           "occlusion (ONNX), saliency (SpineNet, averaged over augmentations) or gradcam (both need torch)."),
    lumbar_vertebrae: Optional[int] = LumbarOption,
    overwrite: bool = OverwriteOption,
) -> None:
    """Segment, name levels, measure, crop every disc and grade it; writes levels.csv (one row per disc, the
    same columns as `analyze`)."""
    from dataclasses import replace

    from lumbarkit.cli.progress import StageStatus
    from lumbarkit.errors import InputError
    from lumbarkit.pipeline import Pipeline, PipelineConfig
    from lumbarkit.report.outfolder import check_output, staged_folder
    from lumbarkit.report.outputs import write_hotspots, write_levels_csv
    from lumbarkit.stages.s6_hotspots import METHODS

    if hotspots is not None and hotspots not in METHODS:
        raise InputError(f"unknown hotspot method {hotspots!r}: choose one of {', '.join(METHODS)}")
    check_output(out, input, overwrite)  # before any work
    config = PipelineConfig(grade_model=str(model) if model is not None else None, tta=tta, lumbar_vertebrae=lumbar_vertebrae)
    if hotspots is not None:
        config = replace(config, hotspots=True, hotspot_method=hotspots)
    with StageStatus() as status:
        result = Pipeline(config).run(input, until="hotspots" if hotspots else "grade", spacing_mm=spacing_tuple(spacing),
                                      series=series, on_stage=status.update)
    if result.grades is None:
        raise LumbarkitError("no grader model is installed: give one with --model")
    with staged_folder(out, input) as tmp:
        write_levels_csv(result, tmp / "levels.csv")
        files = write_hotspots(result, tmp) if hotspots is not None else []
    path = out / "levels.csv"
    if hotspots is not None:
        typer.echo(f"wrote {len(files)} {hotspots} maps to {out / 'hotspots'}")
    _print(result.grades, result.warnings)
    typer.echo(f"wrote {path}")


def _print(grades, warnings) -> None:
    from rich.console import Console
    from rich.table import Table

    from lumbarkit.results.grades import BINARY_COLUMNS

    table = Table(title="disc grades")
    for col in ("level", "Pfirrmann", "LDD", "Modic", "findings"):
        table.add_column(col)
    for d in grades.discs:
        found = [k for k in BINARY_COLUMNS if d.grades.get(k) == 1]
        table.add_row(d.level, str(d.grades.get("pfirrmann", "")), d.ldd, str(d.grades.get("modic", "")), ", ".join(found))
    console = Console()
    console.print(table)
    for w in warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")


def _check_spider(spider: Path) -> None:
    if not ((spider / "series.csv").is_file() and (spider / "gradings.csv").is_file()):
        raise LumbarkitError(f"{spider} is not a SPIDER folder (expected series.csv, gradings.csv and images/)")


@train_app.command("grade")
def train_grade(
    spider: Path = typer.Option(..., "--spider", help="SPIDER folder (series.csv, gradings.csv, images/)."),
    cache: Path = typer.Option(Path("runs/grade_cache"), "--cache", help="Folder for the cached crops (stage 1 runs once)."),
    out: Path = typer.Option(..., "-o", "--out", help="Model folder to write."),
    ablation_dir: Optional[Path] = typer.Option(None, "--ablation-dir", help="Run the ablation here (resumable) and ship its best configuration."),
    folds: Optional[List[int]] = typer.Option(None, "--folds", help="CV folds to run (default all); repeat the option."),
    trunk: str = typer.Option("vggm", help="Trunk when no ablation is run: vggm, resnet, efficientnet, vgg11_ca."),
    loss: str = typer.Option("focal", help="Loss when no ablation is run: focal or cb_ce."),
    epochs: int = typer.Option(12, help="Training epochs."),
    seed: int = typer.Option(0, help="Random seed (also of the patient folds)."),
    fold: Optional[int] = typer.Option(None, help="Only train without this fold and write its held-out predictions to OUT."),
    threads: int = typer.Option(1, help="torch CPU threads."),
    seg_model: Optional[Path] = typer.Option(None, "--seg-model", help="Segmentation model folder that locates the discs (default: the packaged one)."),
) -> None:
    """Build the SPIDER crop cache, (optionally) run the ablation, train the chosen grader on all discs, export it + card."""
    require_training_extra()
    _check_spider(spider)
    from lumbarkit.training.grade.data import build_grade_dataset
    from lumbarkit.training.grade.recipe import train_grade_model
    from lumbarkit.training.grade.train import GradeTrainConfig, train_grader

    cfg = GradeTrainConfig(trunk=trunk, loss=loss, epochs=epochs, seed=seed, threads=threads)
    if fold is not None:
        build_grade_dataset(spider, cache, seg_model=seg_model)
        typer.echo(f"wrote {train_grader(cache, out, cfg, fold=fold)}")
        return
    command = (f"lumbarkit train grade --spider {spider} --cache {cache}"
               + (f" --seg-model {seg_model}" if seg_model is not None else "")
               + (f" --ablation-dir {ablation_dir}" if ablation_dir is not None else f" --trunk {trunk} --loss {loss}")
               + "".join(f" --folds {k}" for k in folds or ()) + f" --epochs {epochs} --seed {seed} -o {out}")
    card = train_grade_model(spider, cache, out, cfg, ablation_dir=ablation_dir, folds=folds, seg_model=seg_model,
                             reproduce=command)
    typer.echo(f"wrote {out} ({card.name})")


@evaluate_app.command("grade")
def evaluate_grade(
    cache: Path = typer.Option(..., "--cache", help="Crop cache built by `lumbarkit train grade` (grade_dataset.npz)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Grader model folder (default: the packaged model)."),
    cv_dir: Optional[Path] = typer.Option(None, "--cv-dir", help="Evaluate the out-of-fold predictions (fold*.npz) in this folder instead of a model."),
    tta: bool = typer.Option(True, "--tta/--no-tta", help="Test-time augmentation."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples (patients) for the 95% intervals."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Write metrics JSON and confusion-matrix PNGs here."),
) -> None:
    """Per-task metrics with bootstrap CIs, by level and sequence, and confusion matrices.

    A model evaluated on the discs it was trained on gives optimistic numbers: use --cv-dir for held-out ones."""
    import json

    import numpy as np
    from rich.console import Console

    from lumbarkit.tasks import LDD_CLASSES, TASKS
    from lumbarkit.training.grade.data import load_grade_dataset
    from lumbarkit.training.grade.metrics import evaluate_grades, save_confusion_png

    data = load_grade_dataset(cache)
    console = Console()
    if cv_dir is not None:
        from lumbarkit.training.grade.train import collect_oof

        probs, idx, done = collect_oof(cv_dir, data, 5, tta)
        if not done:
            raise LumbarkitError(f"no fold*.npz predictions in {cv_dir}")
        source = f"out-of-fold predictions of folds {done}"
    else:
        from lumbarkit.models.folder import load_model
        from lumbarkit.stages.s5_grade import predict_probabilities

        folder = load_model(model, "grade_2d")
        if folder.spec.crop_spec != data.spec:
            raise LumbarkitError("the cache's crops were cut with a different crop spec than the model expects")
        idx = np.arange(len(data))
        probs = predict_probabilities(folder, data.images, tta)
        source = f"model {folder.name}"
        if folder.spec.training.get("data", {}).get("discs"):
            console.print("[yellow]note:[/yellow] this model was trained on SPIDER discs; these numbers are optimistic "
                          "(use --cv-dir for held-out predictions).")
    res = evaluate_grades(TASKS, {t.name: data.labels[t.name][idx] for t in TASKS}, probs, patient_ids=data.patient[idx],
                          breakdown={"level": data.level[idx], "sequence": data.sequence[idx]}, n_boot=n_boot)
    res["source"] = source
    for t in TASKS:
        m = res["overall"][t.name]["metrics"]
        keys = ("balanced_accuracy", "kappa_quadratic", "auc", "auc_macro", "ldd_accuracy", "any_balanced_accuracy")
        typer.echo(f"{t.name:18s} n={res['overall'][t.name]['n']:5d} " + " ".join(
            f"{k}={m[k]:.3f}" for k in keys if m.get(k) is not None))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "grade_metrics.json").write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
        for t in TASKS:
            o = res["overall"][t.name]
            if "confusion" in o:
                save_confusion_png(o["confusion"], t.class_names, out / f"confusion_{t.name}.png", t.name)
        if "ldd_confusion" in res["overall"]["pfirrmann"]:
            save_confusion_png(res["overall"]["pfirrmann"]["ldd_confusion"], LDD_CLASSES, out / "confusion_ldd3.png", "LDD 3-class")
        typer.echo(f"wrote {out}")
