"""Segmentation network factory (torch + MONAI; training and export only)."""

from __future__ import annotations


def build_segmentation_net(spec: dict):
    """Build the 2D segmentation net described by ``spec`` (the ``architecture`` of model.json).

    ``spec`` keys: ``name`` ("monai.UNet"), ``in_channels``, ``out_channels``, ``channels``,
    ``strides``, ``num_res_units``.
    """
    from monai.networks.nets import UNet

    if spec.get("name") != "monai.UNet":
        raise ValueError(f"unknown segmentation architecture {spec.get('name')!r}")
    return UNet(
        spatial_dims=2,
        in_channels=int(spec["in_channels"]),
        out_channels=int(spec["out_channels"]),
        channels=tuple(spec["channels"]),
        strides=tuple(spec["strides"]),
        num_res_units=int(spec.get("num_res_units", 0)),
        norm=spec.get("norm", "instance"),
    )
