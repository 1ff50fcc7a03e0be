"""model.json is validated against the code: another class order or task table is a ModelError."""

from __future__ import annotations

import json
import shutil

import pytest

from lumbarkit.errors import ModelError
from lumbarkit.models.folder import ModelFolder, load_model, packaged_model
from lumbarkit.models.spec import ModelSpec
from lumbarkit.seg_classes import CLASS_NAMES
from lumbarkit.tasks import get_task


def _copy_with(tmp_path, name: str, edit) -> ModelFolder:
    dst = tmp_path / name
    shutil.copytree(packaged_model(name).path, dst)
    doc = json.loads((dst / "model.json").read_text())
    edit(doc)
    (dst / "model.json").write_text(json.dumps(doc))
    return dst


def test_packaged_models_are_typed():
    seg, grader = packaged_model("segment_2d"), packaged_model("grade_2d")
    assert seg.spec.kind == "segmentation" and seg.spec.classes == CLASS_NAMES
    assert seg.spec.pixel_mm == 1.0 and seg.spec.pad_multiple == 16
    assert grader.spec.kind == "grading" and grader.spec.tasks[0] == "pfirrmann"
    assert grader.spec.crop_spec.size_mm == (36.0, 72.0)  # the README's 36 x 72 mm crop
    assert len(seg.spec.onnx_sha256) == 64


def test_segmentation_model_with_another_class_order_is_refused(tmp_path):
    def swap(doc):
        doc["classes"][1], doc["classes"][2] = doc["classes"][2], doc["classes"][1]

    with pytest.raises(ModelError, match="mislabel"):
        ModelFolder.load(_copy_with(tmp_path, "segment_2d", swap))


def test_grader_with_an_unknown_task_is_refused(tmp_path):
    def rename(doc):
        doc["outputs"]["names"][1] = "stenosis"

    with pytest.raises(ModelError, match="unknown grading task"):
        ModelFolder.load(_copy_with(tmp_path, "grade_2d", rename))


def test_grader_with_other_class_values_is_refused(tmp_path):
    def regrade(doc):
        row = next(r for r in doc["tasks"] if r["name"] == "pfirrmann")
        row["classes"] = [0, 1, 2, 3, 4]

    assert get_task("pfirrmann").classes == (1, 2, 3, 4, 5)
    with pytest.raises(ModelError, match="pfirrmann"):
        ModelFolder.load(_copy_with(tmp_path, "grade_2d", regrade))


def test_grader_without_crop_spec_is_refused(tmp_path):
    with pytest.raises(ModelError, match="crop_spec"):
        ModelFolder.load(_copy_with(tmp_path, "grade_2d", lambda doc: doc.pop("crop_spec")))


@pytest.mark.parametrize("doc, match", [([], "JSON object"), ({"task": "detection"}, "task"),
                                        ({"task": "grading", "files": {}}, "model.onnx")])
def test_malformed_documents(doc, match):
    with pytest.raises(ModelError, match=match):
        ModelSpec.from_dict(doc)


def test_threads_are_a_load_parameter_not_metadata():
    one = load_model(None, "segment_2d", threads=1)
    assert one.threads == 1 and one.session.get_session_options().intra_op_num_threads == 1
    assert packaged_model("segment_2d").threads == 2
    assert one.spec == packaged_model("segment_2d").spec
    with pytest.raises(ModelError, match="threads"):
        load_model(None, "segment_2d", threads=0)
