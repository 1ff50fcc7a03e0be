"""The typed, validated form of a model folder's ``model.json``.

:class:`ModelSpec` holds what inference needs (architecture, input spec, class or task table,
crop spec, file sha256s) and checks it against the code: a segmentation model whose ``classes``
differ from :data:`lumbarkit.seg_classes.CLASS_NAMES`, or a grader whose tasks or class values
differ from :data:`lumbarkit.tasks.TASKS`, would mislabel silently, so it is a :class:`ModelError`.
Runtime options (threads) are not part of the spec; they are load parameters of
:class:`~lumbarkit.models.folder.ModelFolder`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from lumbarkit.errors import ModelError
from lumbarkit.seg_classes import CLASS_NAMES
from lumbarkit.results.crops import CropSpec
from lumbarkit.tasks import TASK_NAMES, get_task

KINDS = ("segmentation", "grading")


@dataclass(frozen=True)
class ModelSpec:
    """``model.json`` of one model folder, validated.

    name, version : model identity (``version`` as a string).
    kind : "segmentation" or "grading" (the ``task`` key of model.json).
    architecture : the network's build spec (read by the training code and torch-based hotspots).
    files : file name -> sha256 of every file the folder ships.
    pixel_mm, pad_multiple : segmentation input: in-plane pixel size (mm) the net runs at, and the
        multiple its input is padded to.
    classes : segmentation output classes in channel order (equal to the code's class table).
    tasks : grader outputs in order (each a task of :mod:`lumbarkit.tasks` with the same class values).
    crop_spec : how the grader's crops are cut.
    document : the whole model.json (read-only), for model cards and provenance.
    """

    name: str
    version: str
    kind: str
    architecture: Mapping[str, Any]
    files: Mapping[str, str]
    pixel_mm: float | None = None
    pad_multiple: int = 16
    classes: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    crop_spec: CropSpec | None = None
    document: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def onnx_sha256(self) -> str:
        return self.files.get("model.onnx", "")

    @property
    def training(self) -> Mapping[str, Any]:
        """The ``training`` section (data, cases, configuration); empty when absent."""
        return self.document.get("training") or {}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str = "model.json") -> "ModelSpec":
        """Validate a parsed model.json; any disagreement with the code is a :class:`ModelError` naming ``where``."""
        if not isinstance(doc, Mapping):
            raise ModelError(f"{where}: expected a JSON object")
        kind = doc.get("task")
        if kind not in KINDS:
            raise ModelError(f"{where}: 'task' must be one of {', '.join(KINDS)}, got {kind!r}")
        files = doc.get("files") or {}
        if not isinstance(files, Mapping) or "model.onnx" not in files:
            raise ModelError(f"{where}: 'files' must list model.onnx with its sha256")
        common = dict(name=str(doc.get("name") or ""), version=str(doc.get("version", "0")), kind=kind,
                      architecture=MappingProxyType(dict(doc.get("architecture") or {})),
                      files=MappingProxyType(dict(files)), document=MappingProxyType(dict(doc)))
        if kind == "segmentation":
            return cls(**common, **_segmentation_fields(doc, where))
        return cls(**common, **_grading_fields(doc, where))


def _segmentation_fields(doc: Mapping[str, Any], where: str) -> dict:
    classes = tuple(doc.get("classes") or ())
    if classes != CLASS_NAMES:
        raise ModelError(f"{where}: the model's classes {list(classes)} differ from lumbarkit's "
                         f"{list(CLASS_NAMES)} (same names in the same channel order); it would mislabel")
    inp = doc.get("input") or {}
    try:
        pixel_mm, pad = float(inp["pixel_mm"]), int(inp.get("pad_multiple", 16))
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{where}: 'input' must give pixel_mm (the net's pixel size in mm)") from None
    if not 0.05 <= pixel_mm <= 5.0 or pad < 1:
        raise ModelError(f"{where}: implausible input pixel_mm {pixel_mm} or pad_multiple {pad}")
    return {"classes": classes, "pixel_mm": pixel_mm, "pad_multiple": pad}


def _grading_fields(doc: Mapping[str, Any], where: str) -> dict:
    outputs = doc.get("outputs") or {}
    names = tuple(outputs.get("names") or (doc.get("architecture") or {}).get("tasks") or ())
    if not names:
        raise ModelError(f"{where}: a grader must name its outputs (outputs.names)")
    unknown = [n for n in names if n not in TASK_NAMES]
    if unknown:
        raise ModelError(f"{where}: unknown grading task(s) {unknown}; lumbarkit knows {list(TASK_NAMES)}")
    for row in doc.get("tasks") or ():
        if row.get("name") in names and tuple(row.get("classes") or ()) != get_task(row["name"]).classes:
            raise ModelError(f"{where}: task {row['name']} has classes {row.get('classes')}, "
                             f"lumbarkit grades it as {list(get_task(row['name']).classes)}")
    try:
        crop_spec = CropSpec.from_dict(doc["crop_spec"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{where}: a grader needs a valid crop_spec ({type(exc).__name__}: {exc})") from None
    return {"tasks": names, "crop_spec": crop_spec}
