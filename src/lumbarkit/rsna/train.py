"""Training and cross-validation of the RSNA severity model (needs the ``[train]`` extra: torch, MONAI, sklearn).

Loss: the host's sample-weighted cross entropy (weights 1 / 2 / 4 for a true normal-mild / moderate / severe row)
plus ``ANY_SEVERE_WEIGHT`` times the weighted binary cross entropy of ``any_severe_spinal`` (the largest P(severe)
over a study's labelled spinal rows), trained by study. Folds are by study (one study per patient in RSNA).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lumbarkit.rsna.format import CONDITIONS, LABEL_VALUES, LEVELS, SAMPLE_WEIGHTS, target_columns

ANY_SEVERE_WEIGHT = 0.5


@dataclass
class RsnaCache:
    """Crops of every study: ``crops`` (S, 25, 1, px, px), ``present`` (S, 25), ``labels`` (S, 25; -1 blank)."""

    study_ids: list[str]
    crops: np.ndarray
    present: np.ndarray
    labels: np.ndarray
    seconds: np.ndarray  # crop extraction time per study
    notes: dict[str, list[str]]
    discs: dict[str, dict[str, np.ndarray]] | None = None  # study -> level -> disc centre found (RAS mm)


def study_labels(data, study_id: str) -> np.ndarray:
    """The 25 labels of a study (-1 where blank or absent)."""
    out = np.full(len(target_columns()), -1, dtype=np.int64)
    if data.labels is None:
        return out
    rows = data.labels[data.labels["study_id"].astype(str) == study_id]
    if len(rows):
        for i, col in enumerate(target_columns()):
            v = rows.iloc[0][col]
            if isinstance(v, str) and v in LABEL_VALUES:
                out[i] = LABEL_VALUES[v]
    return out


def build_cache(data, pipeline, measure: bool = False, on_study=None, labelled_only: bool = False) -> RsnaCache:
    """Crops and labels of every study of ``data`` (an :class:`~lumbarkit.rsna.dataset.RsnaData`); with
    ``labelled_only`` the studies without any label are left out."""
    from lumbarkit.rsna.crops import study_crops

    ids, crops, present, labels, seconds, notes, discs = [], [], [], [], [], {}, {}
    for sid in sorted(data.studies):
        y = study_labels(data, sid)
        if labelled_only and not (y >= 0).any():
            continue
        c = study_crops(data.studies[sid], pipeline, measure=measure)
        ids.append(sid)
        crops.append(c.crops)
        present.append(c.present)
        labels.append(y)
        seconds.append(c.seconds)
        notes[sid] = list(data.studies[sid].problems) + c.notes
        discs[sid] = c.discs
        if on_study is not None:
            on_study(sid)
    if not ids:
        from lumbarkit.errors import InputError

        raise InputError(f"{data.root}: no {'labelled ' if labelled_only else ''}study with images")
    return RsnaCache(ids, np.stack(crops), np.stack(present), np.stack(labels), np.array(seconds), notes, discs)


def label_prior(labels: np.ndarray) -> np.ndarray:
    """(25, 3) class frequencies per target over the labelled rows (+1 each: no class has probability 0)."""
    counts = np.ones((labels.shape[1], 3))
    for j in range(labels.shape[1]):
        for k in range(3):
            counts[j, k] += int((labels[:, j] == k).sum())
    return counts / counts.sum(axis=1, keepdims=True)


def _loss(logits, y, present, device="cpu"):
    import torch
    import torch.nn.functional as F

    w_table = torch.tensor(SAMPLE_WEIGHTS, device=device)
    m = present & (y >= 0)
    if not m.any():
        return logits.sum() * 0.0
    w = w_table[y.clamp(min=0)]
    ce = F.cross_entropy(logits[m], y[m], reduction="none")
    loss = (ce * w[m]).sum() / w[m].sum()
    p_sev = torch.softmax(logits[:, : len(LEVELS)], dim=-1)[..., 2]
    ms = m[:, : len(LEVELS)]
    has = ms.any(dim=1)
    if has.any():
        pred = torch.where(ms, p_sev, torch.zeros_like(p_sev)).amax(dim=1)[has].clamp(1e-6, 1 - 1e-6)
        label = ((y[:, : len(LEVELS)] == 2) & ms).any(dim=1)[has].float()
        weight = torch.where(ms, w[:, : len(LEVELS)], torch.zeros_like(w[:, : len(LEVELS)])).amax(dim=1)[has]
        loss = loss + ANY_SEVERE_WEIGHT * (F.binary_cross_entropy(pred, label, reduction="none") * weight).sum() / weight.sum()
    return loss


def fit(cache: RsnaCache, idx: np.ndarray, epochs: int = 40, seed: int = 0, batch: int = 8):
    """Train a :class:`~lumbarkit.nets.rsna.RsnaNet` on the studies ``idx``; returns (net, seconds per epoch)."""
    import torch

    from lumbarkit.nets.rsna import RsnaNet
    from lumbarkit.rsna.model import context_rows

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # a GPU when torch sees one
    net = RsnaNet().to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    ctx = torch.from_numpy(context_rows()).to(device)
    X, P, Y = (torch.from_numpy(a[idx]).to(device) for a in (cache.crops, cache.present, cache.labels))
    per_epoch = []
    for _ in range(epochs):
        t = time.perf_counter()
        net.train()
        for b in np.array_split(rng.permutation(len(idx)), max(1, int(np.ceil(len(idx) / batch)))):
            x = X[b]
            b = torch.from_numpy(b).to(device)
            shift = tuple(int(v) for v in rng.integers(-2, 3, 2))
            x = torch.roll(x, shift, dims=(-2, -1)) * float(rng.uniform(0.9, 1.1))
            logits = net(x.reshape(-1, *x.shape[2:]), ctx.repeat(len(b), 1)).reshape(len(b), -1, 3)
            loss = _loss(logits, Y[b], P[b], device)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        per_epoch.append(time.perf_counter() - t)
    return net.cpu().eval(), float(np.mean(per_epoch)) if per_epoch else 0.0


def predict_net(net, crops: np.ndarray) -> np.ndarray:
    """(S, 25, 3) probabilities of a torch net on crops (S, 25, 1, px, px)."""
    import torch

    from lumbarkit.rsna.model import context_rows

    ctx = torch.from_numpy(context_rows())
    with torch.no_grad():
        x = torch.from_numpy(crops)
        logits = net(x.reshape(-1, *x.shape[2:]), ctx.repeat(len(crops), 1)).reshape(len(crops), -1, 3)
    return torch.softmax(logits, dim=-1).numpy().astype(np.float64)


def with_prior(probs: np.ndarray, present: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Probabilities where a crop exists, the label prior where it does not."""
    return np.where(present[..., None], probs, prior[None])


def cross_validate(cache: RsnaCache, folds: int = 5, epochs: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Out-of-fold probabilities (S, 25, 3), the out-of-fold prior-only probabilities, seconds per epoch."""
    from lumbarkit.training.folds import patient_folds

    fold_of = patient_folds(cache.study_ids, min(folds, len(cache.study_ids)), seed)
    fold = np.array([fold_of[s] for s in cache.study_ids])
    oof, prior_oof, seconds = np.zeros((*cache.labels.shape, 3)), np.zeros((*cache.labels.shape, 3)), []
    for k in sorted(set(fold)):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        prior = label_prior(cache.labels[train])
        net, s = fit(cache, train, epochs, seed + k)
        seconds.append(s)
        oof[test] = with_prior(predict_net(net, cache.crops[test]), cache.present[test], prior)
        prior_oof[test] = prior[None]
    return oof, prior_oof, float(np.mean(seconds))


def evaluate(cache: RsnaCache, probs: np.ndarray) -> dict:
    """The competition score of ``probs`` against the cache's labels, plus per-condition weighted log loss and AUCs
    (severe vs not; moderate or severe vs normal/mild) where both classes occur."""
    from sklearn.metrics import roc_auc_score

    from lumbarkit.rsna.format import row_id
    from lumbarkit.rsna.metric import score, weighted_log_loss

    cols = target_columns()
    truth, pred = {}, {}
    for s, sid in enumerate(cache.study_ids):
        for j, col in enumerate(cols):
            if cache.labels[s, j] >= 0:
                condition, level = col[: -len(LEVELS[0]) - 1], col[-len(LEVELS[0]):]
                truth[row_id(sid, condition, level)] = int(cache.labels[s, j])
                pred[row_id(sid, condition, level)] = probs[s, j]
    out = {"score": score(pred, truth).to_dict(), "conditions": {}}
    for ci, c in enumerate(CONDITIONS):
        sl = slice(ci * len(LEVELS), (ci + 1) * len(LEVELS))
        y, p = cache.labels[:, sl].ravel(), probs[:, sl].reshape(-1, 3)
        keep = y >= 0
        y, p = y[keep], p[keep]
        entry = {"rows": int(len(y)), "weighted_log_loss": weighted_log_loss(y, p, np.array(SAMPLE_WEIGHTS)[y]) if len(y) else None}
        for name, pos, score_p in (("auc_severe", y == 2, p[:, 2]), ("auc_moderate_or_worse", y >= 1, p[:, 1] + p[:, 2])):
            entry[name] = float(roc_auc_score(pos, score_p)) if 0 < pos.sum() < len(pos) else None
        out["conditions"][c] = entry
    return out


def save_model(net, cache: RsnaCache, out: Path, metrics: dict, command: str) -> Path:
    """Export ``net`` to ``out/model.onnx`` with ``model.json`` and ``MODEL_CARD.md``."""
    from lumbarkit.models.folder import sha256_file
    from lumbarkit.nets.rsna import export_onnx
    from lumbarkit.rsna.card import write_card
    from lumbarkit.rsna.crops import CROP_MM, CROP_PX
    from lumbarkit.rsna.model import KIND

    out.mkdir(parents=True, exist_ok=True)
    export_onnx(net, out / "model.onnx", CROP_PX)
    doc = {"kind": KIND, "name": "rsna_severity", "crop_px": CROP_PX, "crop_mm": CROP_MM,
           "targets": target_columns(), "prior": label_prior(cache.labels).round(6).tolist(),
           "training": {"studies": len(cache.study_ids), "labelled_rows": int((cache.labels >= 0).sum()), "command": command},
           "metrics": metrics, "onnx_sha256": sha256_file(out / "model.onnx")}
    (out / "model.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    write_card(out, doc)
    return out


def level_distances(data, cache_discs: dict[str, dict[str, np.ndarray]]) -> dict[str, dict]:
    """Per level: how far lumbarkit's disc centre lies from the labelled points of that level (mm): along the
    superior-inferior axis (what names a level) and in 3D (the labelled point sits in the canal, foramen or recess,
    not at the disc centre), over the coordinate rows of studies whose level was found."""
    from lumbarkit.rsna.format import COORD_LEVELS
    from lumbarkit.rsna.geometry import read_plane

    if data.coordinates is None:
        return {}
    si: dict[str, list[float]] = {}
    d3: dict[str, list[float]] = {}
    for r in data.coordinates.itertuples(index=False):
        level = COORD_LEVELS.get(r.level)
        disc = cache_discs.get(str(r.study_id), {}).get(level)
        if disc is None:
            continue
        plane = read_plane(data.root / f"{data.split}_images" / str(r.study_id) / str(r.series_id) / f"{int(r.instance_number)}.dcm")
        if plane is None:
            continue
        p = plane.to_ras(float(r.x), float(r.y))
        si.setdefault(level, []).append(abs(float(p[2] - disc[2])))
        d3.setdefault(level, []).append(float(np.linalg.norm(p - disc)))
    return {lv: {"points": len(si[lv]), "median_si_mm": round(float(np.median(si[lv])), 1),
                 "p90_si_mm": round(float(np.percentile(si[lv], 90)), 1), "median_3d_mm": round(float(np.median(d3[lv])), 1)}
            for lv in LEVELS if lv in si}


def train_rsna(root: Path, out: Path, folds: int = 5, epochs: int = 40, seed: int = 0, command: str = "", on_study=None) -> dict:
    """Crops of every labelled study, cross-validation, the final model on all of them; returns the metrics."""
    from lumbarkit.pipeline import Pipeline
    from lumbarkit.rsna.dataset import read_rsna

    data = read_rsna(root, "train")
    cache = build_cache(data, Pipeline(), on_study=on_study, labelled_only=True)
    if len(cache.study_ids) < 2:
        from lumbarkit.errors import InputError

        raise InputError(f"{root}: {len(cache.study_ids)} labelled study(ies) with images; training needs at least 2")
    ids, seconds, notes = cache.study_ids, cache.seconds, cache.notes
    oof, prior_oof, _ = cross_validate(cache, folds, epochs, seed)
    net, epoch_s = fit(cache, np.arange(len(ids)), epochs, seed)
    per_study_epoch = epoch_s / len(ids)
    metrics = {"folds": min(folds, len(ids)), "epochs": epochs, "cv": evaluate(cache, oof), "prior_only": evaluate(cache, prior_oof),
               "level_distance_mm": level_distances(data, cache.discs),
               "timing": {"crop_seconds_per_study": float(np.mean(seconds)), "train_seconds_per_epoch_per_study": per_study_epoch,
                          "estimate_1975_crops_h": float(np.mean(seconds)) * 1975 / 3600,
                          "estimate_1975_epoch_min": per_study_epoch * 1975 / 60},
               "notes": {k: v for k, v in notes.items() if v}}
    save_model(net, cache, Path(out), metrics, command or f"lumbarkit rsna train {root} -o {out}")
    return metrics
