"""Evidence hotspots point at the pixels the score depends on (nets built by hand, known answers)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

H, W = 64, 128
REGION = (slice(8, 24), slice(80, 112))  # the only pixels the score reads


class RegionNet(nn.Module):
    """Pfirrmann-shaped output whose class-0 logit is 20 x the mean of channel 0 over REGION."""

    task_names = ("pfirrmann",)
    cam_layer = "features"

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(1, 2, 1, bias=True)
        with torch.no_grad():
            self.features.weight[:] = torch.tensor([1.0, -1.0]).view(2, 1, 1, 1)
            self.features.bias[:] = torch.tensor([0.0, 1.0])  # channel 0 = x, channel 1 = 1 - x

    def forward(self, x):
        a = self.features(x)
        score = 20.0 * a[:, 0, REGION[0], REGION[1]].mean(dim=(1, 2))
        zeros = torch.zeros_like(score)
        return {"pfirrmann": torch.stack([score, zeros, zeros, zeros, zeros], dim=1)}


def _crop(value: float = 0.6) -> np.ndarray:
    x = np.full((1, 1, H, W), 0.3, dtype=np.float32)
    x[0, 0, REGION[0], REGION[1]] = value
    return x


def _peak_in_region(m: np.ndarray) -> bool:
    r, c = np.unravel_index(int(np.argmax(m)), m.shape)
    return REGION[0].start <= r < REGION[0].stop and REGION[1].start <= c < REGION[1].stop


def test_saliency_peaks_where_the_score_reads():
    from lumbarkit.stages.s6_hotspots import saliency_maps

    maps = saliency_maps(RegionNet(), _crop(), tasks=("pfirrmann", "modic"), n_augment=4)
    assert set(maps) == {(0, "pfirrmann")}  # a task the net lacks is skipped
    m = maps[(0, "pfirrmann")]
    assert m.shape == (H, W) and m.max() == pytest.approx(1.0) and m.min() >= 0
    assert _peak_in_region(m)
    far = m[40:, :40].mean()
    assert far < 0.05 * m[REGION].mean()


def test_gradcam_follows_the_channel_the_score_uses():
    from lumbarkit.stages.s6_hotspots import gradcam_maps

    m = gradcam_maps(RegionNet(), _crop(0.9))[(0, "pfirrmann")]
    # the score grows with channel 0 (= x): Grad-CAM highlights where x is large, i.e. REGION
    assert _peak_in_region(m)
    assert m[REGION].mean() > 2 * m[40:, :40].mean()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_occlusion_through_onnx_peaks_where_the_score_reads(tmp_path):
    pytest.importorskip("onnx")
    import onnxruntime as ort

    from lumbarkit.stages.s6_hotspots import occlusion_maps

    class Folder:  # the one attribute occlusion_maps needs from a ModelFolder
        def __init__(self, path):
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    class Wrapped(RegionNet):
        def forward(self, x):
            return super().forward(x)["pfirrmann"]

    path = tmp_path / "region.onnx"
    torch.onnx.export(Wrapped(), (torch.zeros(2, 1, H, W),), str(path), input_names=["crops"], output_names=["pfirrmann"],
                      dynamic_axes={"crops": {0: "batch"}, "pfirrmann": {0: "batch"}}, opset_version=17, dynamo=False)
    maps = occlusion_maps(Folder(path), _crop(), tasks=("pfirrmann",))
    m = maps[(0, "pfirrmann")]
    assert m.shape == (H, W) and m.max() == pytest.approx(1.0)
    assert _peak_in_region(m)
    assert m[40:, :40].max() == 0.0  # occluding pixels the score never reads changes nothing


def test_overlay_png_writes_an_image(tmp_path):
    import imageio.v3 as iio

    from lumbarkit.report.hotspot_png import overlay_png

    heat = np.zeros((H, W), dtype=np.float32)
    heat[REGION] = 1.0
    path = overlay_png(_crop()[0], heat, tmp_path / "h" / "L4-L5_pfirrmann.png", title="L4/L5 pfirrmann")
    img = iio.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 100
