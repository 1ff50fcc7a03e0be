"""Model folders: ``model.json`` + ``model.onnx`` (+ ``weights.safetensors``) + ``MODEL_CARD.md``.

A model folder is self-contained: architecture, input spec, label table, training data,
metrics and the sha256 of every file are in ``model.json``. Loading verifies the hashes and
never downloads anything; inference needs only onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from lumbarkit.errors import ModelError
from lumbarkit.models.spec import ModelSpec

PACKAGED_MODELS = Path(__file__).resolve().parent


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _default_threads() -> int:
    """ONNX Runtime intra-op threads by default: the cores this process may use, at most 4 (the networks are small)."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


DEFAULT_THREADS = _default_threads()


@dataclass(frozen=True)
class ModelFolder:
    """A verified model folder: its :class:`ModelSpec`, and the ONNX session opened lazily with ``threads`` on
    ``provider`` (see :mod:`lumbarkit.models.runtime`).

    ``threads`` (ONNX Runtime intra-op threads) and ``provider`` are load parameters, not part of the model."""

    path: Path
    spec: ModelSpec
    threads: int = DEFAULT_THREADS
    provider: str = "cpu"

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None, provider: str = "cpu") -> "ModelFolder":
        """Read and validate ``model.json``, verify every file's sha256; raises :class:`ModelError`."""
        folder = Path(path)
        meta_path = folder / "model.json"
        if not meta_path.is_file():
            raise ModelError(f"not a model folder (no model.json): {folder}")
        try:
            doc = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelError(f"model.json in {folder} is not valid JSON: {exc}") from None
        spec = ModelSpec.from_dict(doc, where=str(meta_path))
        for name, digest in sorted(spec.files.items()):
            f = folder / name
            if not f.is_file():
                raise ModelError(f"model file missing: {f}")
            if sha256_file(f) != digest:
                raise ModelError(f"model file {f} does not match its sha256 in model.json (corrupt or modified)")
        if threads is not None and int(threads) < 1:
            raise ModelError(f"threads must be >= 1, got {threads}")
        return cls(folder, spec, DEFAULT_THREADS if threads is None else int(threads), provider)

    @property
    def name(self) -> str:
        return self.spec.name or self.path.name

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def onnx_sha256(self) -> str:
        return self.spec.onnx_sha256

    @cached_property
    def session(self):
        """The ONNX Runtime session (all graph optimisations, ``threads`` intra-op threads, sequential execution)."""
        import onnxruntime as ort

        from lumbarkit.models.runtime import session_providers

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(str(self.path / "model.onnx"), sess_options=opts,
                                    providers=session_providers(self.provider)[0])

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run the ONNX model on one float32 input batch; returns its first output."""
        sess = self.session
        return sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def packaged_model(name: str, threads: int | None = None, provider: str = "cpu") -> ModelFolder:
    """Load a model folder shipped inside the package (``lumbarkit/models/<name>``)."""
    path = PACKAGED_MODELS / name
    if not (path / "model.json").is_file():
        raise ModelError(f"the packaged model {name!r} is not installed in {PACKAGED_MODELS}")
    return ModelFolder.load(path, threads=threads, provider=provider)


def load_model(model: "ModelFolder | str | Path | None", default: str, threads: int | None = None,
               provider: str = "cpu") -> ModelFolder:
    """``model`` itself when already loaded, the folder at a path, or the packaged model ``default`` when None."""
    if isinstance(model, ModelFolder):
        return model
    return packaged_model(default, threads, provider) if model is None else ModelFolder.load(model, threads, provider)
