"""The RSNA 2024 Lumbar Spine Degenerative Classification data as published (Kaggle layout).

``train_images/<study_id>/<series_id>/<instance>.dcm`` (``test_images/`` for the test set),
``train_series_descriptions.csv`` (study_id, series_id, series_description), ``train.csv`` (study_id and
25 columns ``<condition>_<level>`` holding "Normal/Mild", "Moderate", "Severe" or blank) and
``train_label_coordinates.csv`` (study_id, series_id, instance_number, condition, level, x, y).
A submission has one row per ``<study_id>_<condition>_<level>`` with ``normal_mild, moderate, severe``.
"""

from __future__ import annotations

CONDITIONS = ("spinal_canal_stenosis", "left_neural_foraminal_narrowing", "right_neural_foraminal_narrowing",
              "left_subarticular_stenosis", "right_subarticular_stenosis")
LEVELS = ("l1_l2", "l2_l3", "l3_l4", "l4_l5", "l5_s1")
SEVERITIES = ("normal_mild", "moderate", "severe")
LABEL_VALUES = {"Normal/Mild": 0, "Moderate": 1, "Severe": 2}
SAMPLE_WEIGHTS = (1.0, 2.0, 4.0)  # the host's weights of a true normal/mild, moderate, severe row

SAGITTAL_T1, SAGITTAL_T2, AXIAL_T2 = "Sagittal T1", "Sagittal T2/STIR", "Axial T2"
DESCRIPTIONS = (SAGITTAL_T1, SAGITTAL_T2, AXIAL_T2)
# which series shows which condition (as the radiologists labelled them)
CONDITION_SERIES = {"spinal_canal_stenosis": SAGITTAL_T2,
                    "left_neural_foraminal_narrowing": SAGITTAL_T1, "right_neural_foraminal_narrowing": SAGITTAL_T1,
                    "left_subarticular_stenosis": AXIAL_T2, "right_subarticular_stenosis": AXIAL_T2}
GROUPS = {"spinal": ("spinal_canal_stenosis",),
          "foraminal": ("left_neural_foraminal_narrowing", "right_neural_foraminal_narrowing"),
          "subarticular": ("left_subarticular_stenosis", "right_subarticular_stenosis")}
# coordinate-table names: "Spinal Canal Stenosis", "L1/L2" <-> column names
COORD_CONDITIONS = {"Spinal Canal Stenosis": "spinal_canal_stenosis",
                    "Left Neural Foraminal Narrowing": "left_neural_foraminal_narrowing",
                    "Right Neural Foraminal Narrowing": "right_neural_foraminal_narrowing",
                    "Left Subarticular Stenosis": "left_subarticular_stenosis",
                    "Right Subarticular Stenosis": "right_subarticular_stenosis"}
COORD_LEVELS = {"L1/L2": "l1_l2", "L2/L3": "l2_l3", "L3/L4": "l3_l4", "L4/L5": "l4_l5", "L5/S1": "l5_s1"}
DISC_NAMES = {v: k for k, v in COORD_LEVELS.items()}  # "l4_l5" -> "L4/L5" (lumbarkit's disc names)


def target_columns() -> list[str]:
    """The 25 label columns of ``train.csv``, condition-major as the host wrote them."""
    return [f"{c}_{lv}" for c in CONDITIONS for lv in LEVELS]


def row_id(study_id, condition: str, level: str) -> str:
    """A submission row id: ``<study_id>_<condition>_<level>``."""
    return f"{study_id}_{condition}_{level}"


def split_row_id(rid: str) -> tuple[str, str, str]:
    """(study_id, condition, level) of a submission row id; a ValueError when it is not one."""
    for condition in CONDITIONS:
        for level in LEVELS:
            suffix = f"_{condition}_{level}"
            if rid.endswith(suffix) and len(rid) > len(suffix):
                return rid[: -len(suffix)], condition, level
    raise ValueError(f"not an RSNA row id: {rid!r}")


def group_of(condition: str) -> str:
    return next(g for g, members in GROUPS.items() if condition in members)
