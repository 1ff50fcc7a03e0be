"""Export a trained grader as a model folder (model.onnx + weights.safetensors + model.json)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

from lumbarkit.models.folder import sha256_file
from lumbarkit.tasks import TASKS
from lumbarkit.version import __version__

log = logging.getLogger(__name__)

MODEL_NAME = "lumbarkit-grade-2d"


def task_table() -> list[dict]:
    return [{"name": t.name, "classes": list(t.classes), "class_names": list(t.class_names), "kind": t.kind,
             "spider_column": t.column} for t in TASKS]


def training_counts(data) -> dict:
    """What the model was trained on: discs, patients, series, per sequence / level, class counts per task."""
    from lumbarkit.training.grade.losses import count_classes

    return {
        "discs": int(len(data)),
        "patients": int(len(set(data.patient.tolist()))),
        "series": int(len(set(data.series.tolist()))),
        "discs_by_sequence": dict(sorted(Counter(data.sequence.tolist()).items())),
        "discs_by_level": dict(sorted(Counter(data.level.tolist()).items())),
        "class_counts": {t.name: count_classes(data.labels[t.name], t.n_classes) for t in TASKS},
        "pairing": data.meta.get("counts", {}),
        "segmentation_model": data.meta.get("seg_model", ""),
        "segmentation_model_sha256": data.meta.get("seg_model_sha256", ""),
    }


def export_grader(net, cfg, data, out: str | Path, *, epoch_seconds=None, metrics: dict | None = None,
                  name: str = MODEL_NAME, input_extra: dict | None = None) -> Path:
    """Write the model folder for ``net`` trained with ``cfg`` on ``data`` (a :class:`GradeDataset`); ``name`` and
    ``input_extra`` (more ``input`` keys, e.g. a study grader's channel sequences) describe other graders."""
    from safetensors.torch import save_file

    from lumbarkit.nets.grader import count_parameters, export_onnx

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    net.eval()
    input_shape = tuple(int(v) for v in data.images.shape[1:])
    outputs = export_onnx(net, out / "model.onnx", input_shape)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / "weights.safetensors"))
    meta = {
        "name": name,
        "version": "1",
        "task": "grading",
        "min_package_version": __version__,
        "architecture": dict(net.spec),
        "parameters": count_parameters(net),
        "crop_spec": data.spec.to_dict(),
        "input": {"name": "crops", "shape": ["batch", *input_shape], "modality": "MR",
                  "orientation": "disc crop: rows along the disc normal (inferior down), cols along the disc (posterior right)",
                  "normalisation": "adjacent vertebral bodies' median = 0.5, clipped to [0, 1] (stages/crops.py)",
                  "sequences_seen": sorted(set(data.sequence.tolist())), **(input_extra or {})},
        "outputs": {"names": outputs, "kind": "logits per task; softmax over classes"},
        "tasks": task_table(),
        "tta": {"default": True, "variants": "stages/grade.py TTA_NAMES"},
        "training": {"config": asdict(cfg), "data": training_counts(data),
                     "seconds_per_epoch": None if not epoch_seconds else round(float(np.mean(epoch_seconds)), 2)},
        "metrics": metrics or {},
    }
    meta["files"] = {name: sha256_file(out / name) for name in ("model.onnx", "weights.safetensors")}
    (out / "model.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    log.info("exported grader to %s", out)
    return out
