"""ONNX Runtime execution providers: which one a model session runs on, chosen by a short name.

``cpu`` (the default) is always there. ``cuda``, ``rocm``, ``coreml``, ``directml``, ``openvino`` and
``tensorrt`` need the matching onnxruntime build (e.g. ``pip install onnxruntime-gpu``) and a device; ``auto``
takes the first accelerator the installed build offers. A provider the build lacks falls back to the CPU
with a note (the analysis runs, slower); a name that is no provider at all is an :class:`InputError`.
"""

from __future__ import annotations

from lumbarkit.errors import InputError

CPU = "CPUExecutionProvider"
PROVIDERS = {"cpu": CPU, "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
             "rocm": "ROCMExecutionProvider", "coreml": "CoreMLExecutionProvider", "directml": "DmlExecutionProvider",
             "openvino": "OpenVINOExecutionProvider"}
AUTO_ORDER = ("tensorrt", "cuda", "rocm", "directml", "coreml", "openvino")


def check_provider(name: str) -> str:
    """``name`` lower-cased when it is a known short name or ``auto``; else an :class:`InputError`."""
    key = str(name).strip().lower()
    if key != "auto" and key not in PROVIDERS:
        raise InputError(f"unknown ONNX execution provider {name!r}: choose auto or one of {', '.join(PROVIDERS)}")
    return key


def session_providers(name: str, available: list[str] | None = None) -> tuple[list[str], str | None]:
    """The onnxruntime provider list for ``name`` (CPU always last, as the fallback) and a note when the requested
    provider is not in ``available`` (default: what the installed onnxruntime build offers)."""
    key = check_provider(name)
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    if key == "auto":
        found = [PROVIDERS[k] for k in AUTO_ORDER if PROVIDERS[k] in available]
        return found[:1] + [CPU], None
    wanted = PROVIDERS[key]
    if wanted == CPU:
        return [CPU], None
    if wanted not in available:
        return [CPU], (f"ONNX provider {key} is not available in this onnxruntime build "
                       f"(available: {', '.join(available)}): models ran on the CPU")
    return [wanted, CPU], None
