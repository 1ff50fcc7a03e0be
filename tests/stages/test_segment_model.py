"""The packaged segmentation model: integrity, ONNX vs torch, and `lumbarkit segment` on real data."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from lumbarkit.errors import ModelError
from lumbarkit.models.folder import ModelFolder, packaged_model

CLI = [sys.executable, "-c", "from lumbarkit.cli.main import run; run()"]


def test_packaged_model_loads_and_describes_itself():
    model = packaged_model("segment_2d")
    assert model.spec.classes[:4] == ("background", "vertebral_body", "disc", "spinal_canal")
    assert model.spec.pixel_mm > 0
    assert set(model.spec.files) == {"model.onnx", "weights.safetensors"}
    out = model.run(np.zeros((1, 1, 64, 48), dtype=np.float32))
    assert out.shape == (1, len(model.spec.classes), 64, 48)
    cv = model.spec.document["metrics"]["cv"]
    assert cv["folds_done"] == list(range(cv["n_folds"])) and cv["n_folds"] == 5  # a complete patient-level CV
    card = (model.path / "MODEL_CARD.md").read_text()
    assert "Folds finished: 5 of 5" in card and "lumbarkit train segment" in card


def test_tampered_model_file_is_refused(tmp_path):
    src = packaged_model("segment_2d").path
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    with open(dst / "model.onnx", "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelError, match="sha256"):
        ModelFolder.load(dst)


def test_onnx_and_torch_outputs_agree():
    torch = pytest.importorskip("torch", reason="needs the [train] extra")
    from safetensors.torch import load_file

    from lumbarkit.nets.segmentation import build_segmentation_net

    model = packaged_model("segment_2d")
    net = build_segmentation_net(dict(model.spec.architecture))
    net.load_state_dict(load_file(str(model.path / "weights.safetensors")))
    net.eval()
    x = np.random.default_rng(0).random((2, 1, 160, 128), dtype=np.float32)
    with torch.no_grad():
        expected = net(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(model.run(x), expected, atol=1e-4, rtol=1e-4)


def _spider_spacing(shared_data, series: str) -> tuple[float, float]:
    import pandas as pd

    table = pd.read_csv(shared_data / "spider" / "series.csv")
    return tuple(ast.literal_eval(table.set_index("series").loc[series, "PixelSpacing"]))


@pytest.mark.slow  # a subprocess
def test_segment_cli_writes_labels_on_the_input_grid(shared_data, tmp_path):
    import nibabel as nib

    src = shared_data / "spider_space" / "110_t2_SPACE_image.nii.gz"
    out = tmp_path / "seg.nii.gz"
    code = "import sys; from lumbarkit.cli.main import run; run(); print('TORCH' if 'torch' in sys.modules else 'NOTORCH')"
    res = subprocess.run([sys.executable, "-c", code, "segment", str(src), "-o", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "NOTORCH" in res.stdout  # inference runs on onnxruntime alone
    image, labels = nib.load(str(src)), nib.load(str(out))
    assert labels.shape == image.shape
    np.testing.assert_allclose(labels.affine, image.affine)
    pred = np.asanyarray(labels.dataobj)
    truth = np.asanyarray(nib.load(str(shared_data / "spider_space" / "110_t2_SPACE_label.nii.gz")).dataobj)
    disc_pred, disc_true = pred > 100, truth == 2
    dice = 2 * (disc_pred & disc_true).sum() / (disc_pred.sum() + disc_true.sum())
    assert dice > 0.75  # labels land on the right voxels (wrong orientation would give ~0)
    assert "L5/S1" in res.stdout


@pytest.mark.slow  # a subprocess
def test_segment_cli_on_a_2d_slice_writes_a_png_of_the_same_size(shared_data, tmp_path):
    import imageio.v3 as iio

    src = shared_data / "spider" / "images" / "100_t2.png"
    row, col = _spider_spacing(shared_data, "100_t2")
    res = subprocess.run(CLI + ["segment", str(src), "--spacing", str(row), str(col), "-o", str(tmp_path)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    labels = iio.imread(tmp_path / "segmentation.png")
    assert labels.shape == iio.imread(src).shape[:2]
    assert {120, 121, 122, 123, 124} <= set(np.unique(labels).tolist())  # lumbar discs L1/L2..L5/S1 named


def test_model_card_reports_cross_validation():
    model = packaged_model("segment_2d")
    card = (model.path / "MODEL_CARD.md").read_text()
    assert "Cross-validated" in card and "lumbarkit train segment" in card
    cv = model.spec.document["metrics"]["cv"]
    assert cv["n_cases"] > 0 and "dice_disc" in cv["overall"]
    json.dumps(cv)


@pytest.mark.slow  # a subprocess
def test_evaluate_segment_reports_dice_iou_and_naming_per_case(shared_data, tmp_path):
    pytest.importorskip("monai", reason="evaluation needs the [train] extra")
    data = tmp_path / "data"
    (data / "spider_space").mkdir(parents=True)
    (data / "volumes").mkdir()
    for name in ("110_t2_SPACE_image.nii.gz", "110_t2_SPACE_label.nii.gz"):
        (data / "spider_space" / name).symlink_to(shared_data / "spider_space" / name)
    for name in ("ivd_11_image.nii.gz", "ivd_11_label.nii.gz"):
        (data / "volumes" / name).symlink_to(shared_data / "volumes" / name)
    (data / "spider_space" / "index.csv").write_text("series,patient\n110_t2_SPACE,110\n")
    (data / "volumes" / "index.csv").write_text("case,dataset\nivd_11,ivd\n")
    res = subprocess.run(CLI + ["evaluate", "segment", "--data", str(data), "-o", str(tmp_path / "report")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    import pandas as pd

    rows = pd.read_csv(tmp_path / "report" / "segment_cases.csv").set_index("case")
    assert rows.loc["110_t2_SPACE", "dice_disc"] > 0.7 and rows.loc["110_t2_SPACE", "dice_spinal_canal"] > 0.7
    assert "dice_vertebral_body" not in rows.columns  # SPIDER labels whole vertebrae, not bodies
    assert rows.loc["ivd_11", "naming_total"] == 5
    summary = json.loads((tmp_path / "report" / "segment_summary.json").read_text())
    assert summary["n_cases"] == 2 and "dice_disc" in summary["overall"]


def test_float16_conversion_is_numpys_cast_bit_for_bit():
    """The fast cast of probabilities equals ``astype(float16)`` on subnormal, halfway and normal values."""
    from lumbarkit.stages.s1_segment import to_float16

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.random(100_000), np.exp(-rng.random(100_000) * 100), np.arange(0, 2049) * 2.0**-25,
                        [2.0**-14, 2.0**-25, 2.0**-26, 1.0, 0.0, 1e-45]]).astype(np.float32)
    x = np.concatenate([x, np.nextafter(x, np.float32(0)), np.nextafter(x, np.float32(1))])
    assert np.array_equal(to_float16(x).view(np.uint16), x.astype(np.float16).view(np.uint16))
    assert to_float16(x.reshape(3, -1)).shape == (3, x.size // 3)


def test_winning_class_is_argmax_and_max_with_ties_to_the_first_class():
    from lumbarkit.stages.s1_segment import winning_class

    rng = np.random.default_rng(2)
    p = rng.random((6, 40, 50)).astype(np.float16)
    p[:, :5] = 0  # all tied
    p[3, 10:20] = p[1, 10:20]  # ties between two classes
    p[:, 30:] = rng.integers(0, 3, (6, 10, 50)) / 4  # many exact ties
    winner, top = winning_class(p)
    assert np.array_equal(winner, p.argmax(axis=0)) and winner.dtype == np.uint8
    assert np.array_equal(top, p.max(axis=0)) and top.dtype == np.float16
    w32, t32 = winning_class(p.astype(np.float32))
    assert np.array_equal(w32, winner) and np.array_equal(t32, p.max(axis=0).astype(np.float32))
