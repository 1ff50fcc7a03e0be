"""Cohort files of ``lumbarkit batch``, built from every completed series folder of OUTDIR.

``cohort.csv`` / ``cohort.parquet``: one row per disc per series (``series_id`` + the
``levels.csv`` columns); ``vertebrae.csv``: the per-series ``vertebrae.csv`` rows with
``series_id``; ``errors.csv``: series that failed in the latest run; ``index.csv``: which input
each series id came from; ``cohort_*.png``: grade distribution per level (when discs were
graded), disc heights per level and vertebral body heights per vertebra.

Rows are sorted by series id, then anatomical level, so the files do not depend on the order
in which workers finished. Every file is written atomically.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from lumbarkit.report.outputs import atomic_path, write_csv, write_text

MARKER = ".complete"  # written last into OUTDIR/<id>/: the series is complete
COHORT_CSV, COHORT_PARQUET, VERTEBRAE_CSV = "cohort.csv", "cohort.parquet", "vertebrae.csv"
ERRORS_CSV, ERRORS_LOG, INDEX_CSV = "errors.csv", "errors.log", "index.csv"
PLOTS = {"grades": "cohort_grades.png", "disc_height": "cohort_disc_height.png",
         "vertebral_height": "cohort_vertebral_height.png"}
RESERVED_NAMES = frozenset({COHORT_CSV, COHORT_PARQUET, VERTEBRAE_CSV, ERRORS_CSV, ERRORS_LOG, INDEX_CSV, *PLOTS.values()})
ERROR_COLUMNS = ("series_id", "input", "series", "reason")
INDEX_COLUMNS = ("series_id", "status", "input", "series")
TEXT_COLUMNS = {"series_id": str, "level": str, "ldd_3class": str, "vertebra": str, "disc": str}
LAST = 10**6


@dataclass
class Cohort:
    """What the cohort files hold."""

    series: int = 0
    discs: int = 0
    vertebrae: int = 0
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read_marker(outdir: Path, series_id: str) -> dict | None:
    """The completion marker of a series folder, or None when the series is not complete."""
    try:
        return json.loads((Path(outdir) / series_id / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def completed_ids(outdir: Path) -> list[str]:
    """Ids of every complete series folder in ``outdir`` (sorted)."""
    outdir = Path(outdir)
    if not outdir.is_dir():
        return []
    return sorted(p.name for p in outdir.iterdir() if not p.name.startswith(".") and (p / MARKER).is_file())


def level_rank(name: str) -> tuple[int, str]:
    """Sort key of a disc name: anatomical order (T12/L1 before L1/L2 ...), unknown names last."""
    from lumbarkit.levels import disc_id

    try:
        return disc_id(name), name
    except (ValueError, KeyError):
        return LAST, name


def vertebra_rank(row: dict) -> tuple[float, str, str]:
    """Sort key of a vertebrae.csv row: the vertebra's VerSe id (a disc-only row just below its upper body)."""
    from lumbarkit.levels import VERTEBRA_IDS

    name, disc = row.get("vertebra", ""), row.get("disc", "")
    if name:
        return float(VERTEBRA_IDS.get(name, LAST)), name, disc
    upper = disc.partition("/")[0]
    return VERTEBRA_IDS.get(upper, LAST) + 0.5, name, disc


def _read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_cohort(outdir: Path) -> Cohort:
    """(Re)write the cohort tables and plots from every complete series folder of ``outdir``."""
    from lumbarkit.results.measurements import CSV_COLUMNS as VERTEBRA_COLUMNS
    from lumbarkit.results.scan_result import levels_csv_columns

    outdir = Path(outdir)
    ids = completed_ids(outdir)
    disc_cols, vert_cols = ("series_id", *levels_csv_columns()), ("series_id", *VERTEBRA_COLUMNS)
    discs, vertebrae = [], []
    out = Cohort(series=len(ids))
    for sid in ids:
        for name, rows, cols in (("levels.csv", discs, disc_cols), ("vertebrae.csv", vertebrae, vert_cols)):
            path = outdir / sid / name
            if not path.is_file():
                out.notes.append(f"{sid}: no {name}")
                continue
            rows += [{c: (sid if c == "series_id" else r.get(c) or "") for c in cols} for r in _read_rows(path)]
    discs.sort(key=lambda r: (r["series_id"], level_rank(r["level"])))
    vertebrae.sort(key=lambda r: (r["series_id"], vertebra_rank(r)))
    out.discs, out.vertebrae = len(discs), len(vertebrae)
    out.files["cohort"] = write_csv(outdir / COHORT_CSV, discs, disc_cols)
    out.files["vertebrae"] = write_csv(outdir / VERTEBRAE_CSV, vertebrae, vert_cols)
    parquet = _write_parquet(outdir / COHORT_PARQUET, outdir / COHORT_CSV)
    if parquet is None:
        out.notes.append("cohort.parquet not written: it needs pandas with pyarrow (pip install 'lumbarkit[batch]')")
    else:
        out.files["parquet"] = parquet
    out.files.update(write_plots(outdir, discs, vertebrae))
    return out


def _write_parquet(path: Path, csv_path: Path) -> Path | None:
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ImportError:
        return None
    frame = pd.read_csv(csv_path, dtype={k: v for k, v in TEXT_COLUMNS.items()}, keep_default_na=True)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return path


def write_errors(outdir: Path, errors: list[dict], tracebacks: dict[str, str]) -> dict[str, Path]:
    """``errors.csv`` (one row per failed series, sorted) and ``errors.log`` (tracebacks of unexpected errors)."""
    outdir = Path(outdir)
    rows = sorted(errors, key=lambda r: r["series_id"])
    files = {"errors": write_csv(outdir / ERRORS_CSV, rows, ERROR_COLUMNS)}
    log = outdir / ERRORS_LOG
    if tracebacks:
        files["errors_log"] = write_text(log, "".join(f"== {sid}\n{tb.rstrip()}\n\n" for sid, tb in sorted(tracebacks.items())))
    elif log.exists():
        log.unlink()
    return files


def write_index(outdir: Path, errors: list[dict]) -> Path:
    """``index.csv``: series id, status and input of every complete series and every failure."""
    outdir = Path(outdir)
    rows = []
    for sid in completed_ids(outdir):
        marker = read_marker(outdir, sid) or {}
        rows.append({"series_id": sid, "status": "complete", "input": marker.get("input", ""), "series": marker.get("series") or ""})
    done = {r["series_id"] for r in rows}
    rows += [{"series_id": e["series_id"], "status": "failed", "input": e["input"], "series": e["series"]}
             for e in errors if e["series_id"] not in done]
    rows.sort(key=lambda r: r["series_id"])
    return write_csv(outdir / INDEX_CSV, rows, INDEX_COLUMNS)


# ----------------------------------------------------------------------------- plots


def _numbers(rows: list[dict], column: str, key: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in rows:
        try:
            value = float(r.get(column) or "nan")
        except ValueError:
            continue
        if not math.isnan(value):
            out.setdefault(r[key], []).append(value)
    return out


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def _grouped_boxes(ax, groups: list[str], data: dict[str, dict[str, list[float]]], ylabel: str) -> None:
    colors = ("#4c72b0", "#dd8452", "#55a868", "#c44e52")
    groups = [g for g in groups if any(d.get(g) for d in data.values())]
    width = 0.8 / max(1, len(data))
    for k, (label, by_group) in enumerate(data.items()):
        pos = [i + (k - (len(data) - 1) / 2) * width for i in range(len(groups))]
        values = [by_group.get(g, []) for g in groups]
        keep = [(p, v) for p, v in zip(pos, values) if v]
        if not keep:
            continue
        parts = ax.boxplot([v for _, v in keep], positions=[p for p, _ in keep], widths=width * 0.85,
                           patch_artist=True, showfliers=True, manage_ticks=False)
        for box in parts["boxes"]:
            box.set_facecolor(colors[k % len(colors)])
            box.set_alpha(0.75)
        ax.plot([], [], "s", color=colors[k % len(colors)], label=label)
    counts = [max((len(d.get(g, [])) for d in data.values()), default=0) for g in groups]
    ax.set_xticks(range(len(groups)), [f"{g}\nn={n}" for g, n in zip(groups, counts)])
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize=8)


def _stacked_counts(ax, groups: list[str], values_by_group: dict[str, list[float]], classes: list[int], title: str) -> None:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    bottom = [0] * len(groups)
    for i, cls in enumerate(classes):
        counts = [sum(1 for v in values_by_group.get(g, []) if int(v) == cls) for g in groups]
        ax.bar(range(len(groups)), counts, bottom=bottom, color=cmap(i / max(1, len(classes) - 1)), label=str(cls))
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel("discs")
    ax.set_title(title)
    ax.legend(title="grade", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def write_plots(outdir: Path, discs: list[dict], vertebrae: list[dict]) -> dict[str, Path]:
    """The summary PNGs; a plot without data is not written (and an old one is removed)."""
    from matplotlib.figure import Figure

    from lumbarkit.levels import VERTEBRA_IDS

    outdir = Path(outdir)
    files: dict[str, Path] = {}
    levels = sorted({r["level"] for r in discs}, key=level_rank)
    n_series = len({r["series_id"] for r in discs})
    grade_tasks = [(t, c) for t, c in (("pfirrmann", [1, 2, 3, 4, 5]), ("modic", [0, 1, 2, 3]))
                   if _numbers(discs, t, "level")]
    if grade_tasks:
        fig = Figure(figsize=(4.5 + 0.6 * len(levels), 3.6 * len(grade_tasks)), layout="constrained")
        for ax, (task, classes) in zip(fig.subplots(len(grade_tasks), 1, squeeze=False)[:, 0], grade_tasks):
            _stacked_counts(ax, levels, _numbers(discs, task, "level"), classes, f"{task.capitalize()} grade per level ({n_series} series)")
        files["grades_png"] = _save(fig, outdir / PLOTS["grades"])
    heights = {side: _numbers(discs, f"disc_height_{side}_mm", "level") for side in ("anterior", "middle", "posterior")}
    if any(heights.values()):
        fig = Figure(figsize=(4.5 + 0.9 * len(levels), 4.2), layout="constrained")
        ax = fig.subplots()
        _grouped_boxes(ax, levels, {k: v for k, v in heights.items() if v}, "disc height (mm)")
        ax.set_title(f"Disc height per level ({n_series} series)")
        files["disc_height_png"] = _save(fig, outdir / PLOTS["disc_height"])
    bodies = [r for r in vertebrae if r.get("vertebra")]
    names = sorted({r["vertebra"] for r in bodies}, key=lambda n: VERTEBRA_IDS.get(n, LAST))
    vheights = {side: _numbers(bodies, f"height_{side}_mm", "vertebra") for side in ("anterior", "middle", "posterior")}
    if any(vheights.values()):
        fig = Figure(figsize=(4.5 + 0.9 * len(names), 4.2), layout="constrained")
        ax = fig.subplots()
        _grouped_boxes(ax, names, {k: v for k, v in vheights.items() if v}, "vertebral body height (mm)")
        ax.set_title(f"Vertebral body heights ({len({r['series_id'] for r in bodies})} series)")
        files["vertebral_height_png"] = _save(fig, outdir / PLOTS["vertebral_height"])
    for kind, name in PLOTS.items():
        if f"{kind}_png" not in files and (outdir / name).exists():
            (outdir / name).unlink()
    return files


__all__ = ["MARKER", "Cohort", "completed_ids", "read_marker", "write_cohort", "write_errors", "write_index", "write_plots"]
