"""Grader nets: every trunk builds from a spec, returns a dict of logits per task, stays small,
exports to ONNX (outputs named after the tasks) agreeing with torch, and exposes a Grad-CAM layer."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from lumbarkit.nets.grader import TRUNKS, build_grader, count_parameters, default_spec, export_onnx  # noqa: E402
from lumbarkit.tasks import TASKS, TASK_NAMES  # noqa: E402

SHAPE = (3, 64, 128)


def _randomise_norm_stats(model, seed: int = 0) -> None:
    """Give batch-norm layers non-trivial running statistics so eval mode is a real test."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.fixture(scope="module", params=TRUNKS)
def model(request):
    torch.manual_seed(0)
    m = build_grader(default_spec(request.param, n_slices=SHAPE[0], input_shape=SHAPE[1:]))
    _randomise_norm_stats(m)
    return m.eval()


def test_outputs_one_logit_tensor_per_task(model):
    with torch.no_grad():
        out = model(torch.rand(4, *SHAPE))
    assert list(out) == list(TASK_NAMES)
    for t in TASKS:
        assert out[t.name].shape == (4, t.n_classes)
    assert count_parameters(model) < 3_000_000


def test_task_subset_and_unknown_trunk():
    m = build_grader({"trunk": "vggm", "in_channels": 1, "tasks": ["pfirrmann", "modic"]})
    with torch.no_grad():
        out = m(torch.rand(2, 1, 64, 128))
    assert list(out) == ["pfirrmann", "modic"]
    with pytest.raises(ValueError):
        build_grader({"trunk": "alexnet"})
    with pytest.raises(KeyError):
        build_grader({"trunk": "vggm", "tasks": ["pfirrman"]})


def test_onnx_export_matches_torch(model, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "grader.onnx"
    names = export_onnx(model, path, SHAPE)
    assert names == list(TASK_NAMES)
    x = torch.rand(5, *SHAPE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == list(TASK_NAMES)
    outs = sess.run(None, {"crops": x.numpy()})
    for name, arr in zip(TASK_NAMES, outs):
        np.testing.assert_allclose(arr, ref[name].numpy(), atol=1e-4, rtol=1e-4)


def test_grad_cam_layer_gives_a_spatial_map_with_gradients(model):
    layer = model.get_submodule(model.cam_layer)
    store = {}

    def hook(_module, _inp, out):
        store["act"] = out
        out.register_hook(lambda g: store.__setitem__("grad", g))

    handle = layer.register_forward_hook(hook)
    try:
        x = torch.rand(2, *SHAPE)
        out = model(x)
        out["pfirrmann"][:, 3].sum().backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    act, grad = store["act"], store["grad"]
    assert act.ndim == 4 and act.shape == grad.shape and act.shape[2] >= 2 and act.shape[3] >= 2
    cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * act).sum(dim=1))
    assert torch.isfinite(cam).all()


# ---------------------------------------------------------------- losses


def test_losses_mask_missing_labels_and_match_their_definitions():
    from lumbarkit.tasks import get_task
    from lumbarkit.training.grade.losses import GradeLoss, class_balanced_weights, count_classes

    tasks = [get_task("pfirrmann"), get_task("herniation")]
    g = torch.Generator().manual_seed(0)
    z = {"pfirrmann": torch.randn(6, 5, generator=g), "herniation": torch.randn(6, 2, generator=g)}
    y = {"pfirrmann": torch.tensor([0, 1, -1, 4, 2, -1]), "herniation": torch.full((6,), -1)}
    ok = y["pfirrmann"] >= 0
    ce = torch.nn.functional.cross_entropy(z["pfirrmann"][ok], y["pfirrmann"][ok])
    total, parts = GradeLoss(tasks, kind="ce")(z, y)
    assert float(total) == pytest.approx(float(ce), rel=1e-5) and parts["herniation"] == 0.0
    # focal with gamma 0 is cross-entropy; gamma 2 is -(1-p)^2 log p
    assert float(GradeLoss(tasks, kind="focal", gamma=0.0)(z, y)[0]) == pytest.approx(float(ce), rel=1e-5)
    p = torch.softmax(z["pfirrmann"][ok], 1)[torch.arange(4), y["pfirrmann"][ok]]
    focal = float((-(1 - p) ** 2 * torch.log(p)).mean())
    assert float(GradeLoss(tasks, kind="focal", gamma=2.0)(z, y)[0]) == pytest.approx(focal, rel=1e-5)
    # class balancing: effective number weights, rare classes weigh more, weights sum to n_classes
    counts = {"pfirrmann": count_classes(np.array([0, 0, 0, 1, 2, 2, 3, 4, -1]), 5), "herniation": [90, 10]}
    assert counts["pfirrmann"] == [3, 1, 2, 1, 1]
    w = class_balanced_weights([100, 10], beta=0.99)
    assert w.sum() == pytest.approx(2.0) and w[1] > w[0]
    loss = GradeLoss(tasks, counts, kind={"pfirrmann": "cb_ce", "herniation": "cb_focal"}, beta=0.99)
    wt = loss.class_weights("pfirrmann")[y["pfirrmann"][ok]]
    per = torch.nn.functional.cross_entropy(z["pfirrmann"][ok], y["pfirrmann"][ok], reduction="none")
    assert float(loss(z, y)[0]) == pytest.approx(float((wt * per).mean()), rel=1e-5)
    with pytest.raises(ValueError):
        GradeLoss(tasks, None, kind="cb_ce")
    with pytest.raises(ValueError):
        GradeLoss(tasks, kind="hinge")


def test_a_few_training_steps_reduce_the_loss():
    from lumbarkit.tasks import TASKS
    from lumbarkit.training.grade.losses import GradeLoss

    torch.manual_seed(0)
    model = build_grader({"trunk": "vggm", "in_channels": 1, "dropout": 0.0})
    x = torch.rand(8, 1, 64, 128)
    y = {t.name: torch.randint(0, t.n_classes, (8,)) for t in TASKS}
    y["modic"][:4] = -1
    loss_fn = GradeLoss(TASKS, kind="focal")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(15):
        opt.zero_grad()
        total, _ = loss_fn(model(x), y)
        total.backward()
        opt.step()
        losses.append(float(total.detach()))
    assert losses[-1] < 0.5 * losses[0]
