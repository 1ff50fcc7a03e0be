"""``lumbarkit rsna ...``: the RSNA 2024 stenosis track on Kaggle-format data (check, train, predict, score)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lumbarkit.cli.main import app

rsna_app = typer.Typer(help="The RSNA 2024 lumbar spine degenerative classification track (Kaggle-format data).",
                       no_args_is_help=True)
app.add_typer(rsna_app, name="rsna")


@rsna_app.command("check")
def rsna_check(data: Path = typer.Argument(..., help="Folder with {train,test}_images/ and the competition CSVs.")) -> None:
    """Read the layout and report studies, series per type, label coverage and what cannot be used (and why)."""
    from collections import Counter

    from lumbarkit.rsna.dataset import label_coverage, read_rsna
    from lumbarkit.rsna.format import DESCRIPTIONS

    d = read_rsna(data)
    typer.echo(f"{d.split} data: {len(d.studies)} studies")
    counts = Counter(s.description for st in d.studies.values() for s in st.series if s.instances)
    for desc in DESCRIPTIONS:
        with_it = sum(1 for st in d.studies.values() if st.of(desc))
        typer.echo(f"  {desc}: {counts.get(desc, 0)} series in {with_it} studies")
    for condition, (labelled, rows) in label_coverage(d).items():
        typer.echo(f"  labels {condition}: {labelled} of {rows} rows")
    problems = d.problems + [f"study {st.study_id}: {p}" for st in d.studies.values() for p in st.problems]
    typer.echo(f"{len(problems)} problem(s){':' if problems else ''}")
    for p in problems:
        typer.echo(f"  {p}")


@rsna_app.command("train")
def rsna_train(
    data: Path = typer.Argument(..., help="Folder with train_images/, train.csv, train_series_descriptions.csv (+ coordinates)."),
    out: Path = typer.Option(..., "-o", "--out", help="Model folder to write."),
    folds: int = typer.Option(5, help="Cross-validation folds (by study)."),
    epochs: int = typer.Option(40, help="Training epochs."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Cut every study's crops, cross-validate, train the final model and export it with its model card."""
    from lumbarkit.cli.options import require_training_extra

    require_training_extra()
    from lumbarkit.rsna.train import train_rsna

    metrics = train_rsna(data, out, folds, epochs, seed, command=f"lumbarkit rsna train {data} -o {out} --folds {folds} --epochs {epochs} --seed {seed}")
    s, p = metrics["cv"]["score"], metrics["prior_only"]["score"]
    typer.echo(f"CV score {s['score']:.3f} (label prior alone {p['score']:.3f}); wrote {out}")


@rsna_app.command("predict")
def rsna_predict(
    data: Path = typer.Argument(..., help="Folder with {test,train}_images/ and its series descriptions CSV."),
    out: Path = typer.Option(..., "-o", "--out", help="Submission CSV to write."),
    model: Optional[Path] = typer.Option(None, "--model", help="Trained RSNA model folder (without: the canal rule, other conditions uniform)."),
    split: Optional[str] = typer.Option(None, "--split", help="train or test (default: test unless only train data is there)."),
) -> None:
    """Write a submission: 25 rows per study, every study, with the reason wherever a row fell back."""
    import sys

    from lumbarkit.pipeline import Pipeline
    from lumbarkit.rsna.crops import study_crops
    from lumbarkit.rsna.dataset import read_rsna
    from lumbarkit.rsna.model import RsnaModel
    from lumbarkit.rsna.predict import study_probabilities, write_submission

    m = RsnaModel.load(model) if model is not None else None
    if split is None and (data / "test_series_descriptions.csv").is_file():
        split = "test"
    d = read_rsna(data, split)
    pipeline = Pipeline()
    rows = {}
    for sid in sorted(d.studies):
        crops = study_crops(d.studies[sid], pipeline, measure=m is None)
        rows[sid], reasons = study_probabilities(crops, m)
        for note in d.studies[sid].problems + crops.notes + (reasons if m is not None else []):
            print(f"study {sid}: {note}", file=sys.stderr)
    if m is None:
        print("no RSNA model: spinal canal stenosis from the canal AP rule where measured, other conditions uniform", file=sys.stderr)
    write_submission(rows, out)
    typer.echo(f"wrote {out}: {len(rows)} studies, {25 * len(rows)} rows")


@rsna_app.command("score")
def rsna_score(
    submission: Path = typer.Argument(..., help="Submission CSV (row_id, normal_mild, moderate, severe)."),
    labels: Path = typer.Option(..., "--labels", help="train.csv with the true severities."),
) -> None:
    """The competition score (lower is better) and its four parts."""
    import pandas as pd

    from lumbarkit.errors import InputError
    from lumbarkit.rsna.metric import labels_long, score
    from lumbarkit.rsna.predict import read_submission

    try:
        truth = labels_long(pd.read_csv(labels, dtype={"study_id": str}))
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read labels {labels.name}: {type(exc).__name__}") from None
    try:
        s = score(read_submission(submission), truth)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    typer.echo(f"score {s.score:.4f}  spinal {s.spinal:.4f}  foraminal {s.foraminal:.4f}  subarticular {s.subarticular:.4f}  "
               f"any_severe_spinal {s.any_severe_spinal:.4f}  ({s.rows['spinal'] + s.rows['foraminal'] + s.rows['subarticular']} rows)")
