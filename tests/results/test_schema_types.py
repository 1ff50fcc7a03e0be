"""result.schema.json is tested against the typed results it describes (not only against one result.json)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from lumbarkit.levels import VERTEBRA_IDS, disc_name
from lumbarkit.phantom import make_phantom
from lumbarkit.results import ModelInfo
from lumbarkit.results.measurements import canal_stenosis
from lumbarkit.results.scan_result import SCHEMA_PATH
from lumbarkit.stages.s3_measure import measure
from lumbarkit.tasks import LDD_CLASSES, TASKS

SCHEMA = json.loads(SCHEMA_PATH.read_text())
LEVEL = SCHEMA["properties"]["levels"]["items"]["properties"]
VERTEBRA = SCHEMA["properties"]["vertebrae"]["items"]["properties"]


def test_model_records_are_model_info_fields():
    fields = [f.name for f in dataclasses.fields(ModelInfo)]
    assert sorted(SCHEMA["properties"]["models"]["items"]["properties"]) == sorted(fields)
    assert SCHEMA["properties"]["models"]["items"]["required"] == fields


def test_every_unit_a_measurement_carries_is_in_the_schema():
    phantom = make_phantom(slip_mm={"L4": 5.0}, noise_sigma=0.0)
    m = measure(phantom.scan, phantom.labels)
    units = {x.unit for v in m.vertebrae for x in v.measures()}
    units |= {x.unit for d in m.discs for x in d.measures()} | {m.lordosis.unit}
    assert units and units <= set(SCHEMA["$defs"]["measure"]["properties"]["unit"]["enum"])


def test_stenosis_and_ldd_values_are_the_schema_enums():
    produced = {canal_stenosis(mm, r) for mm in (5.0, 9.9, 10.0, 12.9, 13.0, 20.0) for r in (0.3, 0.6, 0.9)}
    assert produced <= set(LEVEL["canal_stenosis"]["enum"]) and produced <= set(VERTEBRA["canal_stenosis"]["enum"])
    assert LEVEL["grades"]["properties"]["ldd_3class"]["properties"]["value"]["enum"] == list(LDD_CLASSES)


@pytest.mark.parametrize("task", TASKS, ids=[t.name for t in TASKS])
def test_every_grading_task_fits_the_grade_record(task):
    grade = SCHEMA["$defs"]["grade"]
    assert task.n_classes >= grade["properties"]["probabilities"]["minItems"]
    assert all(isinstance(v, int) for v in task.classes)  # "value" is an integer grade


def test_level_name_patterns_accept_every_thoracolumbar_name():
    names = [n for n in VERTEBRA_IDS if n[0] in "TL" or n == "S1"]
    assert {"T12", "L1", "L5", "S1"} <= set(names)
    assert all(re.fullmatch(VERTEBRA["name"]["pattern"], n) for n in names)
    discs = [disc_name(n) for n in names if n != "S1"]
    assert all(re.fullmatch(LEVEL["level"]["pattern"], d) for d in discs)


def test_transitional_names_fit_the_schema_and_the_naming_record_is_described():
    from lumbarkit.levels import adjacent

    assert all(re.fullmatch(LEVEL["level"]["pattern"], d) for d in ("L5/L6", "L6/S1", "L4/S1"))
    assert adjacent("L5", "L6") and adjacent("L6", "S1") and adjacent("L4", "S1") and not adjacent("L3", "S1")
    naming = SCHEMA["properties"]["spine"]["properties"]["naming"]
    from lumbarkit.results.levels import Naming

    record = Naming(0.5, True, ("x",), "sacrum", 6, True, {"gap_ratio_min": 0.9}).as_dict()
    assert sorted(naming["required"]) == sorted(record)
    assert set(naming["properties"]["cues"]["properties"]) >= set(record["cues"])
