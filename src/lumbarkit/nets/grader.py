"""Multi-task disc grader: one shared trunk, one linear head per task (torch + MONAI; training/export only).

Input ``(B, n_slices, H, W)`` float32 crops (see :mod:`lumbarkit.stages.s4_crops`: slices are channels);
output ``dict[task name, (B, n_classes) logits]`` in task-list order. Trunks (``spec["trunk"]``):

* ``"vggm"``: SpineNet's VGG-M-style multi-task net (Jamaludin et al. 2017), 7x7/2 and 5x5 convs then
  three 3x3 convs, batch norm instead of LRN, narrow widths;
* ``"resnet"``: MONAI ``ResNet`` with basic blocks, ``layers`` per stage (default 1,1,1,1: ResNet-10);
* ``"efficientnet"``: MONAI ``EfficientNet`` with the B0 block list, width/depth coefficients 0.5,
  random init (nothing downloaded), plain swish so it exports;
* ``"vgg11_ca"``: VGG11 (batch norm) with channel attention (squeeze-and-excitation, MONAI
  ``ChannelSELayer``) after every conv stage (Ding et al. 2024).

Each trunk ends in global average pooling; a shared ``Linear -> ReLU -> Dropout`` neck feeds the heads.
``model.cam_layer`` names (``model.get_submodule``) the last convolutional feature map for Grad-CAM.
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

from lumbarkit.tasks import TASK_NAMES, select_tasks

log = logging.getLogger(__name__)

TRUNKS = ("vggm", "resnet", "efficientnet", "vgg11_ca")
EFFICIENTNET_B0_BLOCKS = (
    "r1_k3_s11_e1_i32_o16_se0.25",
    "r2_k3_s22_e6_i16_o24_se0.25",
    "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25",
    "r3_k5_s11_e6_i80_o112_se0.25",
    "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
)


def _w(channels: int, width: float) -> int:
    return max(8, int(round(channels * width)))


def _conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class VGGMTrunk(nn.Module):
    """SpineNet VGG-M-style trunk; ``features`` ends at the last 3x3 conv (the Grad-CAM layer)."""

    def __init__(self, in_channels: int, width: float = 1.0):
        super().__init__()
        c1, c2, c3 = _w(32, width), _w(64, width), _w(128, width)
        self.block1 = nn.Sequential(_conv_bn_relu(in_channels, c1, 7, stride=2), nn.MaxPool2d(3, 2, 1))
        self.block2 = nn.Sequential(_conv_bn_relu(c1, c2, 5), nn.MaxPool2d(3, 2, 1))
        self.block3 = nn.Sequential(_conv_bn_relu(c2, c3, 3), _conv_bn_relu(c3, c3, 3), _conv_bn_relu(c3, c3, 3))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.block3(self.block2(self.block1(x)))), 1)


class VGG11CATrunk(nn.Module):
    """VGG11-BN with a squeeze-and-excitation layer closing every conv stage, then max pooling."""

    STAGES = ((64,), (128,), (256, 256), (512, 512), (512, 512))

    def __init__(self, in_channels: int, width: float = 0.25, se_ratio: int = 4):
        from monai.networks.blocks import ChannelSELayer

        super().__init__()
        cin = in_channels
        self.stages = nn.ModuleList()
        for stage in self.STAGES:
            layers: list[nn.Module] = []
            for c in stage:
                layers.append(_conv_bn_relu(cin, _w(c, width), 3))
                cin = _w(c, width)
            layers.append(ChannelSELayer(2, cin, r=se_ratio, acti_type_1="relu"))
            self.stages.append(nn.Sequential(*layers))
        self.pool = nn.MaxPool2d(2, 2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.out_features = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < len(self.stages) - 1:
                x = self.pool(x)
        return torch.flatten(self.gap(x), 1)


class _EfficientNetTrunk(nn.Module):
    """MONAI EfficientNet without its classifier (``_fc`` replaced by identity)."""

    def __init__(self, in_channels: int, width: float, depth: float, image_size: int, drop_connect: float):
        from monai.networks.nets import EfficientNet

        super().__init__()
        net = EfficientNet(list(EFFICIENTNET_B0_BLOCKS), spatial_dims=2, in_channels=in_channels, num_classes=1,
                           width_coefficient=width, depth_coefficient=depth, dropout_rate=0.0,
                           image_size=image_size, drop_connect_rate=drop_connect)
        net.set_swish(memory_efficient=False)  # the memory-efficient swish is a custom autograd op: no ONNX
        self.out_features = net._fc.in_features
        net._fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _build_trunk(spec: dict) -> tuple[nn.Module, int, str]:
    """Trunk module, its feature size and the Grad-CAM layer name relative to the trunk."""
    name = spec.get("trunk", "vggm")
    cin = int(spec.get("in_channels", 1))
    width = spec.get("width")
    if name == "vggm":
        t = VGGMTrunk(cin, float(width or 1.0))
        return t, t.out_features, "block3"
    if name == "vgg11_ca":
        t = VGG11CATrunk(cin, float(width or 0.25), int(spec.get("se_ratio", 4)))
        return t, t.out_features, f"stages.{len(t.stages) - 1}"
    if name == "resnet":
        from monai.networks.nets import ResNet

        planes = [_w(c, float(width or 0.5)) for c in (64, 128, 256, 512)]
        t = ResNet(block="basic", layers=list(spec.get("layers", (1, 1, 1, 1))), block_inplanes=planes, spatial_dims=2,
                   n_input_channels=cin, conv1_t_size=7, conv1_t_stride=2, feed_forward=False,
                   act=("relu", {"inplace": False}))
        return t, planes[-1], "layer4"
    if name == "efficientnet":
        shape = spec.get("input_shape", (64, 128))
        t = _EfficientNetTrunk(cin, float(width or 0.5), float(spec.get("depth", 0.5)), int(max(shape)),
                               float(spec.get("drop_connect", 0.1)))
        return t, t.out_features, "net._conv_head"
    raise ValueError(f"unknown grader trunk {name!r}; choose one of {', '.join(TRUNKS)}")


class GraderNet(nn.Module):
    """Shared trunk + neck, one linear head per task; ``forward`` returns ``{task: logits}``."""

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = dict(spec)
        self.tasks = select_tasks(spec.get("tasks"))
        self.task_names = tuple(t.name for t in self.tasks)
        self.fusion = str(spec.get("fusion", "early"))  # channels are slices or sequences: "early"; "late": one trunk per channel
        if self.fusion not in ("early", "late"):
            raise ValueError(f"unknown fusion {self.fusion!r}; choose early or late")
        self.trunk, features, cam = _build_trunk({**spec, "in_channels": 1} if self.fusion == "late" else spec)
        hidden = int(spec.get("hidden", 256))
        self.neck = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(float(spec.get("dropout", 0.3))))
        self.heads = nn.ModuleDict({t.name: nn.Linear(hidden, t.n_classes) for t in self.tasks})
        self.cam_layer = f"trunk.{cam}"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Shared embedding ``(B, hidden)`` of a crop batch.

        Late fusion: each channel (sequence) goes through the shared trunk alone; the features of the channels
        that hold an image (not all zero: a missing sequence) are averaged."""
        if self.fusion == "early":
            return self.neck(self.trunk(x))
        b, c = x.shape[0], x.shape[1]
        per_channel = self.trunk(x.reshape(b * c, 1, *x.shape[2:])).reshape(b, c, -1)
        present = (x.abs().amax(dim=(2, 3)) > 0).to(per_channel.dtype).unsqueeze(-1)
        fused = (per_channel * present).sum(dim=1) / present.sum(dim=1).clamp(min=1.0)
        return self.neck(fused)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.features(x)
        return {name: self.heads[name](z) for name in self.task_names}


def build_grader(spec: dict) -> GraderNet:
    """Build the grader described by ``spec`` (the ``architecture`` entry of its model.json).

    Keys: ``trunk`` (one of :data:`TRUNKS`), ``in_channels`` (= crop ``n_slices``, or sequences), ``fusion``
    ("early": channels into one trunk, default; "late": one shared trunk per channel, features averaged over
    the channels present), ``sequences`` (the channel order of a multi-sequence grader, e.g. ["T1", "T2"]), ``tasks`` (names,
    default all of :data:`lumbarkit.tasks.TASK_NAMES`), ``width`` (channel multiplier; default per trunk),
    ``hidden`` (neck size, 256), ``dropout`` (0.3), ``input_shape`` ((H, W), used by "efficientnet"),
    and per trunk: ``layers`` (resnet), ``depth``/``drop_connect`` (efficientnet), ``se_ratio`` (vgg11_ca).
    """
    return GraderNet(spec)


def default_spec(trunk: str, n_slices: int = 1, input_shape=(64, 128), tasks=None) -> dict:
    """A complete spec with the defaults spelled out (what model.json records)."""
    return {"trunk": trunk, "in_channels": int(n_slices), "tasks": list(tasks or TASK_NAMES),
            "input_shape": [int(v) for v in input_shape], "hidden": 256, "dropout": 0.3}


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def export_onnx(model: GraderNet, path, input_shape) -> list[str]:
    """Export ``model`` (put in eval mode) to ONNX: input ``crops`` (batch, *input_shape), dynamic batch,
    one output per task named after it (logits). Returns the output names."""
    model.eval()
    x = torch.zeros(2, *[int(v) for v in input_shape])
    names = list(model.task_names)
    with warnings.catch_warnings():  # the legacy exporter's deprecation and constant-folding notes
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding")
        torch.onnx.export(
            model, (x,), str(path), input_names=["crops"], output_names=names,
            dynamic_axes={"crops": {0: "batch"}, **{n: {0: "batch"} for n in names}},
            opset_version=17, dynamo=False,
        )
    log.info("exported grader (%s) to %s", model.spec.get("trunk"), path)
    return names
