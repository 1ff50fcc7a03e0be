"""The trained RSNA severity model folder: ``model.json`` + ``model.onnx`` + ``MODEL_CARD.md``; ONNX Runtime only.

``model.json`` holds the crop geometry, the label prior (class frequencies per condition of the training labels,
used for rows whose crop cannot be made), the cross-validated score and the sha256 of the ONNX file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lumbarkit.errors import ModelError
from lumbarkit.rsna.format import CONDITIONS, LEVELS

KIND = "rsna_severity"


def context_rows() -> np.ndarray:
    """(25, 10) one-hot condition and level of each target, in target_columns order."""
    ctx = np.zeros((len(CONDITIONS) * len(LEVELS), len(CONDITIONS) + len(LEVELS)), np.float32)
    for ci in range(len(CONDITIONS)):
        for li in range(len(LEVELS)):
            ctx[ci * len(LEVELS) + li, ci] = ctx[ci * len(LEVELS) + li, len(CONDITIONS) + li] = 1.0
    return ctx


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class RsnaModel:
    path: Path
    doc: dict

    @classmethod
    def load(cls, path: str | Path) -> "RsnaModel":
        from lumbarkit.models.folder import sha256_file

        folder = Path(path)
        try:
            doc = json.loads((folder / "model.json").read_text())
        except (OSError, json.JSONDecodeError):
            raise ModelError(f"not an RSNA model folder (no readable model.json): {folder}") from None
        if doc.get("kind") != KIND:
            raise ModelError(f"{folder} is not an RSNA severity model (kind {doc.get('kind')!r})")
        onnx = folder / "model.onnx"
        if not onnx.is_file() or sha256_file(onnx) != doc.get("onnx_sha256"):
            raise ModelError(f"{onnx} is missing or does not match its sha256 in model.json")
        return cls(folder, doc)

    @property
    def prior(self) -> np.ndarray:
        """(25, 3) class frequencies of the training labels per target (a row's fallback)."""
        return np.asarray(self.doc["prior"], dtype=np.float64)

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """(25, 3) probabilities of one study's crops (25, 1, px, px)."""
        import onnxruntime as ort

        if not hasattr(self, "_session"):
            self._session = ort.InferenceSession(str(self.path / "model.onnx"), providers=["CPUExecutionProvider"])
        logits = self._session.run(None, {"crops": crops.astype(np.float32), "context": context_rows()})[0]
        return softmax(logits.astype(np.float64))
