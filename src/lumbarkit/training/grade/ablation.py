"""The published comparison, with patient-level cross-validation on the cached SPIDER crops.

Trunks (SpineNet VGG-M, ResNet, EfficientNet, VGG11 + channel attention) x loss (focal vs
class-balanced CE) x test-time augmentation (an inference option: both are scored from the same
trained nets). Runs fold-major (every configuration on fold 0, then fold 1, ...) so that a run cut
short still compares every configuration on the same folds; the table says which folds it pools.
Each finished (configuration, fold) is kept on disk and skipped on a rerun (resumable).
Screening: once every configuration has finished the first fold, a trunk whose best score there is
more than SCREEN_MARGIN below the best configuration's is not trained on the other folds (its row
keeps its first-fold figures and says so); the other rows pool the folds all of them finished.

``lumbarkit train grade --ablation`` / :func:`run_ablation` writes ``ablation.md`` and ``ablation.csv``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from lumbarkit.tasks import TASKS
from lumbarkit.training.folds import patient_folds
from lumbarkit.training.grade.data import load_grade_dataset
from lumbarkit.training.grade.train import (
    GradeTrainConfig,
    collect_oof,
    headline,
    train_net,
    write_fold,
)

log = logging.getLogger(__name__)

TRUNKS = ("vggm", "resnet", "efficientnet", "vgg11_ca")
LOSSES = ("focal", "cb_ce")
SELECTION = ("pfirrmann_bacc", "pfirrmann_qwk", "ldd3_acc", "modic_any_bacc")  # mean of these picks the best
SCREEN_MARGIN = 0.1  # score gap on the first fold that drops a trunk from the remaining folds


def config_name(cfg: GradeTrainConfig) -> str:
    return f"{cfg.trunk}__{cfg.loss}"


def run_ablation(cache: str | Path, out: str | Path, base: GradeTrainConfig | None = None, *, folds=None,
                 trunks=TRUNKS, losses=LOSSES) -> Path:
    """Train every (trunk, loss) on each fold in ``folds`` (default all), then write the table.

    Returns the path of ``ablation.md``."""
    base = base or GradeTrainConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_grade_dataset(cache)
    fold_map = patient_folds(data.patient, base.n_folds, base.seed)
    fold_of = np.array([fold_map[p] for p in data.patient])
    folds = list(range(base.n_folds)) if folds is None else [int(k) for k in folds]
    t_start = time.time()
    for k in folds:
        train_idx, test_idx = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
        dropped = screened_out(cache, out, base, trunks, losses) if k != 0 else set()
        for trunk in trunks:
            if trunk in dropped:
                log.info("%s screened out after fold 0: not trained on fold %d", trunk, k)
                continue
            for loss in losses:
                cfg = replace(base, trunk=trunk, loss=loss)
                d = out / config_name(cfg)
                if (d / f"fold{k}.npz").exists():
                    continue
                d.mkdir(parents=True, exist_ok=True)
                t0 = time.time()
                net, epoch_s = train_net(data.subset(train_idx), cfg)
                write_fold(net, data, test_idx, cfg, k, d, epoch_s)
                log.info("%s fold %d done in %.0f s (total %.0f s)", config_name(cfg), k, time.time() - t0, time.time() - t_start)
                write_table(cache, out, base, trunks, losses)
    return write_table(cache, out, base, trunks, losses)


def screened_out(cache, out: Path, base: GradeTrainConfig, trunks=TRUNKS, losses=LOSSES) -> set[str]:
    """Trunks whose best first-fold score is more than SCREEN_MARGIN below the best (empty until all finished fold 0)."""
    if not all((out / f"{t}__{loss}" / "fold0.npz").exists() for t in trunks for loss in losses):
        return set()
    return screen(ablation_rows(cache, out, base, trunks, losses, folds=[0]))


def screen(rows: list[dict], margin: float | None = None) -> set[str]:
    """Trunks whose best row score is more than ``margin`` (default SCREEN_MARGIN) below the best row's."""
    margin = SCREEN_MARGIN if margin is None else margin
    best: dict[str, float] = {}
    for r in rows:
        if r.get("score") is not None:
            best[r["trunk"]] = max(best.get(r["trunk"], -np.inf), r["score"])
    top = max(best.values(), default=0.0)
    return {t for t, v in best.items() if v < top - margin}


def ablation_rows(cache, out: Path, base: GradeTrainConfig, trunks=TRUNKS, losses=LOSSES, folds=None) -> list[dict]:
    """One row per (trunk, loss, tta): pooled out-of-fold metrics over the folds every configuration
    still in the comparison finished (``folds``: only these); screened-out trunks keep their first fold."""
    from lumbarkit.training.grade.metrics import evaluate_grades

    data = load_grade_dataset(cache)
    dropped = set() if folds is not None else screened_out(cache, out, base, trunks, losses)
    done_sets = []
    for trunk in trunks:
        for loss in losses:
            d = out / f"{trunk}__{loss}"
            if trunk not in dropped:
                done_sets.append({k for k in range(base.n_folds) if (d / f"fold{k}.npz").exists()})
    common = sorted(set.intersection(*done_sets)) if done_sets else []
    if folds is not None:
        common = sorted(set(common) & {int(k) for k in folds})
    # a screened-out trunk that was run on the other folds after all is pooled like the rest
    dropped = {t for t in dropped if not all(set(common) <= {k for k in range(base.n_folds)
                                                              if (out / f"{t}__{loss}" / f"fold{k}.npz").exists()}
                                             for loss in losses)}
    rows = []
    for trunk in trunks:
        for loss in losses:
            d = out / f"{trunk}__{loss}"
            for tta in (False, True):
                probs, idx, done = collect_oof(d, data, base.n_folds, tta)
                use = [0] if trunk in dropped else (common if common else done)  # while running: own folds
                keep = np.isin(_fold_index(d, done), use) if done else np.zeros(0, dtype=bool)
                row = {"trunk": trunk, "loss": loss, "tta": tta, "folds": ",".join(map(str, done)) or "-",
                       "screened_out": trunk in dropped}
                if done and keep.any():
                    # pool only the folds every configuration has, so rows compare like with like
                    sel = idx[keep]
                    m = evaluate_grades(TASKS, {t.name: data.labels[t.name][sel] for t in TASKS},
                                        {k: v[keep] for k, v in probs.items()}, n_boot=0)
                    row["folds"] = ",".join(map(str, use))
                    row["n_discs"] = int(len(sel))
                    row.update(headline(m))
                    secs = [json.loads((d / f"fold{k}.json").read_text())["epoch_seconds"] for k in use]
                    row["sec_per_epoch"] = round(float(np.mean([np.mean(s) for s in secs])), 1)
                    row["score"] = round(float(np.mean([row[c] for c in SELECTION if row.get(c) is not None])), 4)
                rows.append(row)
    return rows


def _fold_index(d: Path, done: list[int]) -> np.ndarray:
    """Fold number of every out-of-fold row, in :func:`collect_oof` order."""
    return np.concatenate([np.full(len(np.load(d / f"fold{k}.npz")["index"]), k) for k in done])


def best_config(rows: list[dict]) -> dict | None:
    scored = [r for r in rows if r.get("score") is not None and not r.get("screened_out")]
    return max(scored, key=lambda r: r["score"]) if scored else None


def write_table(cache, out: Path, base: GradeTrainConfig, trunks=TRUNKS, losses=LOSSES) -> Path:
    """Write ``ablation.csv`` and ``ablation.md`` from whatever folds are finished."""
    import pandas as pd

    rows = ablation_rows(cache, out, base, trunks, losses)
    table = pd.DataFrame(rows)
    table.to_csv(out / "ablation.csv", index=False)
    best = best_config(rows)
    data = load_grade_dataset(cache)
    kept = [r for r in rows if not r["screened_out"]]
    folds = kept[0]["folds"] if kept else "-"
    n_done = 0 if folds in ("-", "") else len(folds.split(","))
    lines = [
        "# Grader ablation (SPIDER, patient-level CV)",
        "",
        f"Data: {len(data)} paired discs of {len(set(data.patient))} patients ({len(set(data.series))} series).",
        f"Patient-level {base.n_folds}-fold split (seed {base.seed}); **folds pooled: {folds} "
        f"({n_done} of {base.n_folds})**" + (" - a partial CV, cut to fit the CPU budget." if n_done < base.n_folds else "."),
        f"Each configuration: {base.epochs} epochs, batch {base.batch_size}, AdamW one-cycle lr {base.lr}, "
        f"{base.threads} CPU thread(s); TTA = mean softmax over 8 fixed variants (shifts, zoom, gamma), scored from the same nets.",
        f"Screening: after fold 0, trunks scoring more than {SCREEN_MARGIN} below the best are not trained on the "
        "other folds; their rows (marked *screened out*) show fold 0 only"
        + (f": {', '.join(sorted({r['trunk'] for r in rows if r['screened_out']}))}." if len(kept) < len(rows)
           else ": none (every trunk has every pooled fold)."),
        "Metrics are out-of-fold (held-out patients only). bacc = balanced accuracy, qwk = quadratic kappa,",
        "ldd3 = 3-class mild/moderate/severe accuracy, modic any = Modic any-vs-none balanced accuracy.",
        f"Best = highest mean of {', '.join(SELECTION)}.",
        "",
    ]
    cols = ["trunk", "loss", "tta", "folds", "n_discs", "pfirrmann_bacc", "pfirrmann_qwk", "ldd3_acc", "modic_any_bacc",
            *[f"{t.name}_{m}" for t in TASKS if t.kind == "binary" for m in ("bacc", "auc")], "sec_per_epoch"]
    lines.append("| " + " | ".join(c.replace("_", " ") for c in cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(f"{v:.3f}" if isinstance(v, float) and c != "sec_per_epoch" else str(v))
        if best is not None and r is best:
            cells[0] = f"**{cells[0]}**"
        if r["screened_out"]:
            cells[0] += " *screened out*"
        lines.append("| " + " | ".join(cells) + " |")
    if best is not None:
        lines += ["", f"Best: {best['trunk']} / {best['loss']} / TTA {'on' if best['tta'] else 'off'} (score {best['score']:.3f})."]
    path = out / "ablation.md"
    path.write_text("\n".join(lines) + "\n")
    (out / "ablation_best.json").write_text(json.dumps(best, indent=1, sort_keys=True) + "\n")
    return path
