"""ONNX execution providers: the CPU path by default, a clean fallback when an accelerator is missing."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lumbarkit.errors import InputError
from lumbarkit.models.runtime import CPU, check_provider, session_providers

CLI = [sys.executable, "-c", "from lumbarkit.cli.main import run; run()"]


def test_provider_lists_put_the_cpu_last_as_the_fallback():
    assert session_providers("cpu", [CPU]) == ([CPU], None)
    assert session_providers("CUDA", ["CUDAExecutionProvider", CPU]) == (["CUDAExecutionProvider", CPU], None)
    assert session_providers("auto", ["DmlExecutionProvider", CPU]) == (["DmlExecutionProvider", CPU], None)
    assert session_providers("auto", [CPU]) == ([CPU], None)
    providers, note = session_providers("cuda", ["AzureExecutionProvider", CPU])
    assert providers == [CPU] and "cuda is not available" in note and "ran on the CPU" in note
    with pytest.raises(InputError, match="unknown ONNX execution provider 'gpu'"):
        check_provider("gpu")


def test_packaged_models_run_on_the_cpu_by_default():
    import onnxruntime as ort

    from lumbarkit.models.folder import packaged_model

    seg = packaged_model("segment_2d")
    assert seg.session.get_providers() == [CPU]
    assert 1 <= seg.threads <= 4
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        missing = packaged_model("segment_2d", provider="cuda")
        assert missing.session.get_providers() == [CPU]  # fell back, did not fail
        x = np.random.default_rng(0).random((1, 1, 64, 64), dtype=np.float32)
        assert np.array_equal(missing.run(x), seg.run(x))


def test_config_names_the_provider_and_refuses_an_unknown_one(tmp_path):
    from lumbarkit.pipeline import PipelineConfig

    (tmp_path / "ok.yaml").write_text("onnx_provider: Auto\n")
    assert PipelineConfig.from_yaml(tmp_path / "ok.yaml").onnx_provider == "auto"
    (tmp_path / "bad.yaml").write_text("onnx_provider: gpu\n")
    with pytest.raises(InputError, match="unknown ONNX execution provider"):
        PipelineConfig.from_yaml(tmp_path / "bad.yaml")


@pytest.mark.slow  # two analyses in subprocesses
def test_a_missing_accelerator_gives_the_cpu_result_with_a_warning(tmp_path, phantom):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA: the fallback is not exercised")
    from lumbarkit.io.volume import write_nifti

    scan = write_nifti(phantom.scan.array, phantom.scan.affine, tmp_path / "t2.nii.gz")
    outs = {}
    for provider in ("cpu", "cuda"):
        proc = subprocess.run([*CLI, "analyze", str(scan), "-o", str(tmp_path / provider), "--provider", provider,
                               "--no-hotspots"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs[provider] = json.loads((tmp_path / provider / "result.json").read_text())
    warning = [w for w in outs["cuda"]["warnings"] if w.startswith("ONNX provider cuda")]
    assert len(warning) == 1 and not any("ONNX provider" in w for w in outs["cpu"]["warnings"])
    outs["cuda"]["warnings"].remove(warning[0])
    assert outs["cuda"] == outs["cpu"]
    bad = subprocess.run([*CLI, "analyze", str(scan), "-o", str(tmp_path / "bad"), "--provider", "gpu"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "unknown ONNX execution provider" in bad.stderr
    assert not (tmp_path / "bad").exists()
