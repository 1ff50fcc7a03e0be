"""Stage 6 (hotspots): where on a disc crop the grader's decision came from.

Three maps, each on the crop grid ``(H, W)``, scaled to [0, 1] (1 = strongest evidence):

* :func:`occlusion_maps` (ONNX Runtime, no torch; what ``analyze`` uses): the drop of the
  predicted class's probability when a ``OCCLUSION_PATCH_PX`` window of the crop is replaced by
  a heavily blurred copy of the crop, slid with half-window stride and averaged over the windows
  covering each pixel (Zeiler & Fergus 2014). Blurring rather than zeroing keeps the occluded
  crop inside the intensity range the grader was trained on.
* :func:`saliency_maps` (torch): SpineNet's evidence hotspots (Jamaludin et al. 2016):
  ``|d score / d input|`` of the predicted class, averaged over augmented copies of the crop
  (each gradient mapped back through its augmentation), then lightly smoothed.
* :func:`gradcam_maps` (torch): Grad-CAM (Selvaraju et al. 2017) on the grader's last
  convolutional feature map (``net.cam_layer``), upsampled to the crop.

:func:`lumbarkit.report.hotspot_png.overlay_png` writes a map over its crop; ``DiscCrop.geometry.to_scan_plane`` maps a map
back onto the scan slice.
"""

from __future__ import annotations

import numpy as np

from lumbarkit.tasks import HOTSPOT_TASKS

OCCLUSION_PATCH_PX = (12, 24)  # rows x cols on the 64 x 128 crop: ~7 x 14 mm
OCCLUSION_BLUR_PX = 8.0
DEFAULT_TASKS = HOTSPOT_TASKS


def _normalise(m: np.ndarray) -> np.ndarray:
    m = np.clip(np.nan_to_num(np.asarray(m, dtype=np.float64)), 0.0, None)
    top = m.max()
    return (m / top if top > 0 else m).astype(np.float32)


def _windows(shape: tuple[int, int], patch: tuple[int, int]) -> list[tuple[slice, slice]]:
    h, w = shape
    ph, pw = min(patch[0], h), min(patch[1], w)
    rows = sorted(set(list(range(0, h - ph + 1, max(ph // 2, 1))) + [h - ph]))
    cols = sorted(set(list(range(0, w - pw + 1, max(pw // 2, 1))) + [w - pw]))
    return [(slice(r, r + ph), slice(c, c + pw)) for r in rows for c in cols]


def occlusion_maps(folder, crops: np.ndarray, tasks=DEFAULT_TASKS, patch=OCCLUSION_PATCH_PX) -> dict[tuple[int, str], np.ndarray]:
    """Occlusion evidence per (crop index, task) for crops ``(N, C, H, W)`` through an ONNX grader.

    ``folder`` is the grader's :class:`~lumbarkit.models.folder.ModelFolder`; tasks the model
    lacks are skipped. One ONNX run per crop (all windows batched).
    """
    from scipy.ndimage import gaussian_filter

    from lumbarkit.stages.s5_grade import softmax

    sess = folder.session
    in_name = sess.get_inputs()[0].name
    out_names = [o.name for o in sess.get_outputs()]
    tasks = [t for t in tasks if t in out_names]
    x = np.asarray(crops, dtype=np.float32)
    out: dict[tuple[int, str], np.ndarray] = {}
    if not len(x) or not tasks:
        return out
    wins = _windows(x.shape[-2:], patch)
    for i, crop in enumerate(x):
        blurred = np.stack([gaussian_filter(ch, OCCLUSION_BLUR_PX) for ch in crop]).astype(np.float32)
        batch = np.repeat(crop[None], len(wins) + 1, axis=0)
        for k, (rs, cs) in enumerate(wins, start=1):
            batch[k, :, rs, cs] = blurred[:, rs, cs]
        logits = dict(zip(out_names, sess.run(None, {in_name: batch})))
        for t in tasks:
            p = softmax(logits[t], axis=1)
            cls = int(p[0].argmax())
            drop = p[0, cls] - p[1:, cls]
            acc, cnt = np.zeros(x.shape[-2:]), np.zeros(x.shape[-2:])
            for k, (rs, cs) in enumerate(wins):
                acc[rs, cs] += drop[k]
                cnt[rs, cs] += 1
            out[(i, t)] = _normalise(acc / np.maximum(cnt, 1))
    return out


def _augmentations(rng: np.random.Generator, n: int) -> list[tuple[int, int, float]]:
    """(row shift px, col shift px, gamma) per augmented copy; the first is the identity."""
    out = [(0, 0, 1.0)]
    for _ in range(n - 1):
        out.append((int(rng.integers(-3, 4)), int(rng.integers(-6, 7)), float(rng.uniform(0.85, 1.15))))
    return out


def saliency_maps(net, crops: np.ndarray, tasks=DEFAULT_TASKS, n_augment: int = 8, seed: int = 0) -> dict[tuple[int, str], np.ndarray]:
    """SpineNet-style saliency per (crop index, task): mean ``|d logit_c / d x|`` over augmented
    copies (shift + gamma), each gradient shifted back onto the original crop, summed over
    channels and smoothed (Gaussian, 1.5 px). Needs torch; ``net`` is a :class:`GraderNet`."""
    import torch
    from scipy.ndimage import gaussian_filter
    from scipy.ndimage import shift as nd_shift

    net.eval()
    rng = np.random.default_rng(seed)
    x = np.asarray(crops, dtype=np.float32)
    out: dict[tuple[int, str], np.ndarray] = {}
    tasks = [t for t in tasks if t in net.task_names]
    augs = _augmentations(rng, n_augment)
    for i, crop in enumerate(x):
        with torch.no_grad():
            base = net(torch.from_numpy(crop[None]))
        classes = {t: int(base[t][0].argmax()) for t in tasks}
        sums = {t: np.zeros(x.shape[-2:]) for t in tasks}
        for dr, dc, gamma in augs:
            a = np.clip(np.roll(crop, (dr, dc), axis=(-2, -1)), 0, None) ** gamma
            xt = torch.from_numpy(a[None].astype(np.float32)).requires_grad_(True)
            logits = net(xt)
            for t in tasks:
                grad, = torch.autograd.grad(logits[t][0, classes[t]], xt, retain_graph=True)
                g = np.abs(grad[0].numpy()).sum(axis=0)
                sums[t] += nd_shift(g, (-dr, -dc), order=0, mode="constant")
        for t in tasks:
            out[(i, t)] = _normalise(gaussian_filter(sums[t] / len(augs), 1.5))
    return out


def gradcam_maps(net, crops: np.ndarray, tasks=DEFAULT_TASKS) -> dict[tuple[int, str], np.ndarray]:
    """Grad-CAM per (crop index, task) on ``net.cam_layer``, bilinearly upsampled to the crop. Needs torch."""
    import torch
    import torch.nn.functional as F

    net.eval()
    layer = net.get_submodule(net.cam_layer)
    store: dict = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    x = torch.from_numpy(np.asarray(crops, dtype=np.float32))
    out: dict[tuple[int, str], np.ndarray] = {}
    tasks = [t for t in tasks if t in net.task_names]
    try:
        for i in range(len(x)):
            logits = net(x[i : i + 1])
            acts = store["a"]
            for t in tasks:
                cls = int(logits[t][0].argmax())
                grad, = torch.autograd.grad(logits[t][0, cls], acts, retain_graph=True)
                weights = grad.mean(dim=(2, 3), keepdim=True)
                cam = F.relu((weights * acts).sum(dim=1, keepdim=True))
                cam = F.interpolate(cam, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
                out[(i, t)] = _normalise(cam[0, 0].detach().numpy())
    finally:
        handle.remove()
    return out


METHODS = ("occlusion", "saliency", "gradcam")


def load_torch_grader(folder):
    """The grader of a model folder as a torch :class:`GraderNet` (needs the [train] extra)."""
    try:
        from safetensors.torch import load_file

        from lumbarkit.nets.grader import build_grader
    except ImportError:
        from lumbarkit.errors import LumbarkitError

        raise LumbarkitError("saliency and Grad-CAM hotspots need torch: pip install torch==2.13.0 'lumbarkit[train]' "
                             "(or use the occlusion method)") from None
    net = build_grader(dict(folder.spec.architecture))
    net.load_state_dict(load_file(str(folder.path / "weights.safetensors")))
    return net.eval()


def hotspot_maps(folder, crops: np.ndarray, method: str = "occlusion", tasks=DEFAULT_TASKS) -> dict[tuple[int, str], np.ndarray]:
    """Evidence maps per (crop index, task) with ``method`` (one of :data:`METHODS`)."""
    if method == "occlusion":
        return occlusion_maps(folder, crops, tasks)
    if method not in METHODS:
        from lumbarkit.errors import InputError

        raise InputError(f"unknown hotspot method {method!r}: choose one of {', '.join(METHODS)}")
    net = load_torch_grader(folder)
    return saliency_maps(net, crops, tasks) if method == "saliency" else gradcam_maps(net, crops, tasks)


