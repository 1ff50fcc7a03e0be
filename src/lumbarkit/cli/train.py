"""``lumbarkit train ...`` and ``lumbarkit evaluate ...`` for the segmentation stage."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lumbarkit.cli.main import evaluate_app, train_app
from lumbarkit.cli.options import require_training_extra
from lumbarkit.errors import LumbarkitError


def _check_data(data: Path) -> None:
    if not any((data / p).exists() for p in ("volumes/index.csv", "spider_space/index.csv", "slices2d")):
        raise LumbarkitError(f"{data} holds no labelled data (expected volumes/index.csv, spider_space/index.csv or slices2d/)")


@train_app.command("segment")
def train_segment(
    data: Path = typer.Option(..., "--data", help="Data folder laid out like ../shared/data."),
    out: Path = typer.Option(..., "-o", "--out", help="Model folder to write."),
    steps: int = typer.Option(3000, help="Training steps (batches of 16 patches)."),
    seed: int = typer.Option(0, help="Random seed."),
    fold: Optional[int] = typer.Option(None, help="Only train without this fold of the patient-level CV and evaluate on it."),
    cv: bool = typer.Option(False, "--cv", help="Run every CV fold (resumable), then the final model, then write the model card."),
    threads: int = typer.Option(2, help="torch CPU threads."),
) -> None:
    """Train the segmentation net on all labelled cases and export it (with --cv: cross-validate first)."""
    require_training_extra()
    _check_data(data)
    import torch

    from lumbarkit.training.segment.train import (
        SegTrainConfig,
        train_segmentation,
        train_segmentation_model,
    )

    torch.set_num_threads(threads)
    cfg = SegTrainConfig(steps=steps, seed=seed)
    if fold is not None:
        typer.echo(f"wrote {train_segmentation(data, out, cfg, fold=fold)}")
        return
    card = train_segmentation_model(data, out, cfg, cv=cv)
    typer.echo(f"wrote {out} ({card.name})")


@evaluate_app.command("segment")
def evaluate_segment(
    data: Path = typer.Option(..., "--data", help="Labelled data folder laid out like ../shared/data."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model folder (default: the packaged model)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Write per-case rows (CSV) and summary (JSON) here."),
) -> None:
    """Per-structure Dice/IoU (only where each case labels), level naming accuracy, per-case rows.

    Cases the model was trained on give optimistic numbers: use --cv held-out numbers from the model card,
    or data the model never saw."""
    require_training_extra()
    import json

    import pandas as pd
    from rich.console import Console
    from rich.progress import track

    from lumbarkit.models.folder import load_model
    from lumbarkit.training.segment.data import list_cases
    from lumbarkit.training.segment.evaluate import evaluate_case, summarise

    _check_data(data)
    folder = load_model(model, "segment_2d")
    cases = list_cases(data)
    if not cases:
        raise LumbarkitError(f"no labelled cases found in {data}")
    trained_on = set(folder.spec.training.get("cases", []))
    target_mm = folder.spec.pixel_mm
    rows = []
    for c in track(cases, description="evaluating"):
        row = evaluate_case(c, folder.run, target_mm)
        row["seen_in_training"] = c["case"] in trained_on
        rows.append(row)
    summary = summarise(rows)
    console = Console()
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "naming"} for r in rows])
    console.print(table.to_string(index=False))
    console.print_json(json.dumps(summary))
    if any(r["seen_in_training"] for r in rows):
        console.print("[yellow]note:[/yellow] some cases were used to train this model; their scores are optimistic.")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "segment_cases.csv", index=False)
        (out / "segment_summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
