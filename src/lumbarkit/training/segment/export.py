"""Export a trained segmentation net as a model folder (ONNX + safetensors + model.json + card)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from lumbarkit.models.folder import sha256_file
from lumbarkit.seg_classes import CLASS_NAMES
from lumbarkit.version import __version__

SEG_MODEL_VERSION = "4"  # v4: spider_masks (SPIDER T1/T2/SPACE mid-slices) added, contrast-inversion and low-resolution augmentation

log = logging.getLogger(__name__)


def export_onnx(net, path: Path) -> None:
    """Export ``net`` (eval mode) to ONNX with dynamic batch, height and width."""
    import torch

    x = torch.zeros(2, 1, 192, 160)
    torch.onnx.export(
        net, (x,), str(path), input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}},
        opset_version=17, dynamo=False,
    )


def export_model_folder(net, cfg, out: Path, train_cases: list[dict], metrics: dict | None = None) -> Path:
    """Write ``model.onnx``, ``weights.safetensors`` and ``model.json`` for ``net`` into ``out``."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    net.eval()
    export_onnx(net, out / "model.onnx")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / "weights.safetensors"))
    sources: dict[str, int] = {}
    for c in train_cases:
        sources[c["source"]] = sources.get(c["source"], 0) + 1
    cfg_dict = asdict(cfg)
    meta = {
        "name": "lumbarkit-segment-2d",
        "version": SEG_MODEL_VERSION,
        "task": "segmentation",
        "min_package_version": __version__,
        "architecture": cfg.architecture(),
        "input": {"modality": "MR", "orientation": "sagittal slices (rows inferior, cols posterior)",
                  "pixel_mm": cfg.target_mm, "channels": 1, "normalisation": "per slice 0.5-99.5 percentile to [0,1]",
                  "pad_multiple": 16, "resolution_range_mm": [0.3, 2.0]},
        "classes": list(CLASS_NAMES),
        "training": {"config": cfg_dict, "cases_per_source": sources,
                     "cases": sorted(c["case"] for c in train_cases)},
        "metrics": metrics or {},
    }
    meta["files"] = {name: sha256_file(out / name) for name in ("model.onnx", "weights.safetensors")}
    (out / "model.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return out
