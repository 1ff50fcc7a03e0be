"""The SPIDER grading dataset: disc crops found by stage 1, paired with SPIDER's per-disc gradings.

For every series of ``spider/series.csv`` the mid-sagittal PNG is read with its ``PixelSpacing``,
segmented and localised (stage 1), and one crop is cut per named lumbar disc (T12/L1 .. L5/S1,
:mod:`lumbarkit.stages.s4_crops`). ``gradings.csv`` counts discs from the bottom (``IVD label`` 1 =
L5/S1, 2 = L4/L5, ... 6 = T12/L1); label 0 is undocumented and dropped, labels above 6 (thoracic)
have no crop.

A wrong level name silently shifts every label of a series, so a series is paired only when

* its lowest named disc is L5/S1 (the bottom-up count of the gradings starts there), and
* localisation reports no "missed disc" warning (a missed disc shifts every name above the gap).

Series whose sacrum was inferred (not segmented) are kept, with the warning recorded. Every
excluded series gets a reason; :func:`build_grade_dataset` writes the counts to ``report.json``.

Everything stage 1 produces is cached in one ``.npz`` under a caller-given cache folder (never
inside the package), so training and ablation do not rerun segmentation.
"""

from __future__ import annotations

import ast
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lumbarkit.levels import LUMBAR_DISCS, disc_from_bottom
from lumbarkit.stages.s4_crops import CropSpec
from lumbarkit.tasks import MISSING, TASKS, encode_row

log = logging.getLogger(__name__)

CACHE_NAME = "grade_dataset.npz"
REPORT_NAME = "report.json"
MONTAGE_NAME = "qc_montage.png"
MISSED_DISC = "disc seems missed"
SACRUM_INFERRED = ("sacrum not segmented", "sacrum not classified")  # S1 inferred, not seen
MAX_GRADED_LABEL = len(LUMBAR_DISCS)  # 6 = T12/L1

# exclusion reasons (stable strings: they are counted in report.json)
NO_GRADINGS = "no gradings for this patient"
NO_DISCS = "no discs found"
LOWEST_NOT_L5S1 = "lowest named disc is not L5/S1"
MISSED = "localisation reports a missed disc"
NOT_CROPPED = "no graded disc could be cropped"
STAGE1_FAILED = "stage 1 failed"


def sequence_of(series: str) -> str:
    """``"t1"``, ``"t2"`` or ``"t2_SPACE"`` of a SPIDER series name such as ``"12_t2_SPACE"``."""
    return series.split("_", 1)[1] if "_" in series else "unknown"


def pair_series(disc_names, warnings, graded: dict[int, dict[str, int]]) -> tuple[dict[str, dict[str, int]], str | None]:
    """Pair one series' named discs with its patient's gradings.

    Parameters
    ----------
    disc_names : names of the discs localisation found (any order), e.g. ``["L1/L2", ..., "L5/S1"]``.
    warnings : localisation warnings of the series.
    graded : ``IVD label`` (counted from the bottom, 1 = L5/S1) -> encoded task labels.

    Returns
    -------
    (pairs, reason) : ``pairs`` maps a disc name to its labels (only discs both named and graded);
    ``reason`` is None when the series is kept, else why it was excluded (``pairs`` then empty).
    """
    names = list(disc_names)
    if not graded:
        return {}, NO_GRADINGS
    if not names:
        return {}, NO_DISCS
    order = {n: i for i, n in enumerate(LUMBAR_DISCS)}
    lumbar = [n for n in names if n in order]
    lowest = max(lumbar, key=order.__getitem__) if lumbar else None
    if lowest != "L5/S1":
        return {}, LOWEST_NOT_L5S1
    if any(MISSED_DISC in w for w in warnings):
        return {}, MISSED
    pairs = {}
    for ivd, labels in sorted(graded.items()):
        if not 1 <= ivd <= MAX_GRADED_LABEL:
            continue  # 0 is undocumented; > 6 is thoracic, outside the lumbar crops
        name = disc_from_bottom(ivd)
        if name in names:
            pairs[name] = labels
    return pairs, None


def read_gradings(spider_dir: Path) -> dict[str, dict[int, dict[str, int]]]:
    """Patient id -> ``IVD label`` -> encoded labels (class indices, -1 missing); label 0 rows dropped."""
    import pandas as pd

    table = pd.read_csv(spider_dir / "gradings.csv")
    out: dict[str, dict[int, dict[str, int]]] = {}
    for row in table.to_dict("records"):
        ivd = int(row["IVD label"])
        if ivd == 0:
            continue
        out.setdefault(str(row["Patient"]), {})[ivd] = encode_row(row)
    return out


def read_series(spider_dir: Path) -> list[dict]:
    """Series rows (series, patient, sequence, spacing (row, col) mm), sorted by series name."""
    import pandas as pd

    table = pd.read_csv(spider_dir / "series.csv")
    rows = []
    for r in table.to_dict("records"):
        spacing = tuple(float(v) for v in ast.literal_eval(str(r["PixelSpacing"])))
        rows.append({"series": str(r["series"]), "patient": str(r["patient"]), "sequence": sequence_of(str(r["series"])),
                     "spacing_mm": spacing})
    return sorted(rows, key=lambda r: r["series"])


@dataclass(frozen=True, eq=False)
class GradeDataset:
    """Paired crops and labels (one row per disc) loaded from the cache."""

    images: np.ndarray  # (N, n_slices, H, W) float32
    labels: dict[str, np.ndarray]  # task -> (N,) class index, -1 missing
    patient: np.ndarray  # (N,) str
    series: np.ndarray
    sequence: np.ndarray
    level: np.ndarray
    spec: CropSpec = field(default_factory=CropSpec)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx) -> "GradeDataset":
        idx = np.asarray(idx)
        return GradeDataset(self.images[idx], {k: v[idx] for k, v in self.labels.items()}, self.patient[idx],
                            self.series[idx], self.sequence[idx], self.level[idx], self.spec, self.meta)

    def label_matrix(self, task_names) -> np.ndarray:
        return np.stack([self.labels[n] for n in task_names], axis=1)


def load_grade_dataset(cache: str | Path) -> GradeDataset:
    """Load a cache written by :func:`build_grade_dataset` (a folder or the .npz itself)."""
    path = Path(cache)
    if path.is_dir():
        path = path / CACHE_NAME
    if not path.is_file():
        from lumbarkit.errors import LumbarkitError

        raise LumbarkitError(f"no grading dataset cache at {path}: build it first (lumbarkit train grade --cache DIR)")
    z = np.load(path, allow_pickle=False)
    meta = json.loads(str(z["meta"]))
    task_names = [str(t) for t in z["task_names"]]
    labels = {n: z["labels"][:, i].astype(np.int64) for i, n in enumerate(task_names)}
    return GradeDataset(z["images"].astype(np.float32), labels, z["patient"].astype(str), z["series"].astype(str),
                        z["sequence"].astype(str), z["level"].astype(str), CropSpec.from_dict(meta["crop_spec"]), meta)


def build_grade_dataset(spider_dir: str | Path, cache_dir: str | Path, spec: CropSpec | None = None, *,
                        seg_model=None, threads: int = 1, limit: int | None = None, rebuild: bool = False) -> Path:
    """Run stage 1 + crops on every SPIDER series, pair discs with gradings, cache them.

    Parameters
    ----------
    spider_dir : the ``spider`` folder (series.csv, gradings.csv, images/).
    cache_dir : folder for ``grade_dataset.npz``, ``report.json`` and ``qc_montage.png``.
    spec : crop spec (default :class:`CropSpec`).
    seg_model : segmentation model folder (default: the packaged one).
    threads : onnxruntime threads for stage 1.
    limit : only the first ``limit`` series (quick checks).
    rebuild : ignore an existing cache with the same spec.

    Returns
    -------
    Path of the ``.npz``.
    """
    from lumbarkit.io import load_scan
    from lumbarkit.pipeline import Pipeline, PipelineConfig

    spider_dir, cache_dir = Path(spider_dir), Path(cache_dir)
    spec = spec or CropSpec()
    out = cache_dir / CACHE_NAME
    pipeline = Pipeline(PipelineConfig(segment_model=str(seg_model) if seg_model is not None else None), threads=threads)
    folder = pipeline.segmenter
    if out.is_file() and not rebuild:
        meta = json.loads(str(np.load(out)["meta"]))
        same_cut = (meta.get("crop_spec") == spec.to_dict() and meta.get("limit") == limit
                    and meta.get("seg_model_sha256") == folder.onnx_sha256)
        if same_cut:
            log.info("using cached grading dataset %s", out)
            return out
        log.info("rebuilding %s: it was cut with another crop spec, limit or segmentation model", out)
    cache_dir.mkdir(parents=True, exist_ok=True)
    gradings = read_gradings(spider_dir)
    series_rows = read_series(spider_dir)[: limit or None]
    task_names = [t.name for t in TASKS]
    images, labels, rows, per_series = [], [], [], []
    t0 = time.time()
    for s in series_rows:
        record = {"series": s["series"], "patient": s["patient"], "sequence": s["sequence"]}
        try:
            scan = load_scan(spider_dir / "images" / f"{s['series']}.png", spacing_mm=s["spacing_mm"])
            levels = pipeline.run(scan, until="segment", require_spine=False).levels  # every series, spine or not
        except Exception as exc:  # one bad series must not stop the dataset
            log.warning("%s: stage 1 failed: %s", s["series"], exc)
            record.update(reason=STAGE1_FAILED, error=str(exc), paired=0)
            per_series.append(record)
            continue
        reason, n_paired = _pair_and_crop(scan, levels, spec, gradings.get(s["patient"], {}), record, (images, labels, rows), s)
        record.update(reason=reason, paired=n_paired)
        per_series.append(record)
        log.info("%s: %s (%d discs paired, %.0f s)", s["series"], reason or "kept", n_paired, time.time() - t0)
    if not images:
        from lumbarkit.errors import LumbarkitError

        raise LumbarkitError(f"no disc of {len(series_rows)} series could be paired with a grading")
    report = summarise_pairing(per_series)
    meta = {"crop_spec": spec.to_dict(), "limit": limit, "seg_model": folder.name, "seg_model_sha256": folder.onnx_sha256,
            "spider_dir": str(spider_dir), "counts": report["counts"], "seconds": round(time.time() - t0, 1)}
    arr = np.array(rows, dtype=str)
    np.savez_compressed(out, images=np.stack(images), labels=np.array(labels, dtype=np.int8),
                        task_names=np.array(task_names), patient=arr[:, 0], series=arr[:, 1], sequence=arr[:, 2],
                        level=arr[:, 3], meta=np.array(json.dumps(meta, sort_keys=True)))
    (cache_dir / REPORT_NAME).write_text(json.dumps({**report, "series": per_series}, indent=1, sort_keys=True) + "\n")
    save_qc_montage(load_grade_dataset(out), cache_dir / MONTAGE_NAME)
    log.info("grading dataset: %s", report["counts"])
    return out


def _pair_and_crop(scan, levels, spec: CropSpec, graded: dict, record: dict, out: tuple[list, list, list], s: dict):
    """Pair one series' named discs with its gradings and append the crops of the paired discs to ``out``
    (images, labels, rows); fills ``record``. Returns (exclusion reason or None, discs paired)."""
    from lumbarkit.stages.s4_crops import extract_disc_crops

    images, labels, rows = out
    task_names = [t.name for t in TASKS]
    names = [d.name for d in levels.discs]
    record.update(discs=names, warnings=list(levels.warnings), sacrum_found=bool(levels.sacrum_found))
    pairs, reason = pair_series(names, levels.warnings, graded)
    if reason is None:
        crops = extract_disc_crops(scan, levels, n_slices=spec.n_slices, size_mm=spec.size_mm, shape_px=spec.shape_px,
                                   body_median=spec.body_median, clip=spec.clip, names=sorted(pairs))
        record["skipped_crops"] = [list(x) for x in crops.skipped]
        for c in crops.crops:
            images.append(c.image.astype(np.float16))
            labels.append([pairs[c.name][n] for n in task_names])
            rows.append((s["patient"], s["series"], s["sequence"], c.name))
        n_paired = len(crops.crops)
        if n_paired == 0:
            reason = NOT_CROPPED
        record["graded_not_named"] = sorted(
            disc_from_bottom(k) for k in graded if 1 <= k <= MAX_GRADED_LABEL
            and disc_from_bottom(k) not in pairs)
    else:
        n_paired = 0
    return reason, n_paired


def summarise_pairing(per_series: list[dict]) -> dict:
    """Counts of series kept / excluded by reason, discs paired, by sequence and level."""
    kept = [r for r in per_series if r.get("reason") is None]
    reasons = Counter(r["reason"] for r in per_series if r.get("reason") is not None)
    counts = {
        "series_total": len(per_series),
        "series_kept": len(kept),
        "series_kept_sacrum_inferred": sum(any(w.startswith(SACRUM_INFERRED) for w in r.get("warnings", [])) for r in kept),
        "series_excluded": dict(sorted(reasons.items())),
        "discs_paired": int(sum(r.get("paired", 0) for r in kept)),
        "patients_kept": len({r["patient"] for r in kept}),
        "kept_by_sequence": dict(sorted(Counter(r["sequence"] for r in kept).items())),
    }
    return {"counts": counts}


def save_qc_montage(data: GradeDataset, path: str | Path, n: int = 48, seed: int = 0) -> Path:
    """A grid of crops (middle slice) titled with series, level and Pfirrmann grade, to check the pairing.

    Half of the tiles are L5/S1 discs, the rest drawn from every level; T2 crops first."""
    from matplotlib.figure import Figure

    rng = np.random.default_rng(seed)
    pf = data.labels.get("pfirrmann", np.full(len(data), MISSING))
    l5 = np.flatnonzero(data.level == "L5/S1")
    others = np.flatnonzero(data.level != "L5/S1")
    pick = np.concatenate([rng.permutation(l5)[: n // 2], rng.permutation(others)[: n - min(n // 2, len(l5))]])
    pick = pick[np.lexsort((data.level[pick], data.sequence[pick]))]
    cols = 6
    rows = int(np.ceil(len(pick) / cols))
    fig = Figure(figsize=(cols * 2.4, rows * 1.45), dpi=90)
    mid = data.images.shape[1] // 2
    for k, i in enumerate(pick):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(data.images[i, mid], cmap="gray", vmin=0, vmax=1)
        g = int(pf[i]) + 1 if pf[i] >= 0 else "?"
        ax.set_title(f"{data.series[i]} {data.level[i]} P{g}", fontsize=7)
        ax.axis("off")
    fig.tight_layout(pad=0.3)
    out = Path(path)
    fig.savefig(out)
    return out
