"""The RSNA severity network: a small CNN on one condition-level crop plus which condition and level it is.

Input ``crops`` (N, 1, 32, 32) and ``context`` (N, 10: one-hot condition, one-hot level); output ``logits``
(N, 3: normal/mild, moderate, severe). Built from MONAI blocks; small enough to train on a CPU.
"""

from __future__ import annotations

import warnings

import torch
from monai.networks.blocks import Convolution
from torch import nn

CONTEXT = 10


class RsnaNet(nn.Module):
    def __init__(self, width: int = 16, context: int = CONTEXT):
        super().__init__()
        w = width
        self.trunk = nn.Sequential(
            Convolution(2, 1, w, kernel_size=3, norm="batch", act="relu"), nn.MaxPool2d(2),
            Convolution(2, w, 2 * w, kernel_size=3, norm="batch", act="relu"), nn.MaxPool2d(2),
            Convolution(2, 2 * w, 4 * w, kernel_size=3, norm="batch", act="relu"), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(4 * w + context, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 3))

    def forward(self, crops: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.trunk(crops), context], dim=1))


def export_onnx(net: RsnaNet, path, crop_px: int) -> None:
    """ONNX with inputs ``crops``, ``context`` and output ``logits``, dynamic batch."""
    net.eval()
    x, c = torch.zeros(2, 1, crop_px, crop_px), torch.zeros(2, CONTEXT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding")
        torch.onnx.export(net, (x, c), str(path), input_names=["crops", "context"], output_names=["logits"],
                          dynamic_axes={"crops": {0: "batch"}, "context": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
