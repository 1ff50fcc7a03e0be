"""Reading an RSNA-format folder: its studies, series and label tables, and what in them cannot be used."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lumbarkit.errors import InputError
from lumbarkit.rsna.format import (
    CONDITIONS,
    COORD_CONDITIONS,
    COORD_LEVELS,
    DESCRIPTIONS,
    LABEL_VALUES,
    LEVELS,
    target_columns,
)


@dataclass(frozen=True)
class RsnaSeries:
    study_id: str
    series_id: str
    description: str  # one of DESCRIPTIONS, or what the table says when unknown
    folder: Path
    instances: int
    series_uid: str | None = None  # choose this series within ``folder`` (a DICOM study folder of mixed series)
    files: tuple[Path, ...] = ()  # its files, when the folder holds other series too


@dataclass
class RsnaStudy:
    study_id: str
    series: list[RsnaSeries] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one-line reasons (missing/extra series, unknown description)

    def of(self, description: str) -> list[RsnaSeries]:
        """The usable series with this description (largest first when there are several)."""
        return sorted((s for s in self.series if s.description == description and s.instances), key=lambda s: -s.instances)


@dataclass
class RsnaData:
    """An RSNA-format folder: ``split`` ("train" or "test"), its studies, and the tables as pandas DataFrames."""

    root: Path
    split: str
    studies: dict[str, RsnaStudy]
    labels: object | None  # train.csv (None for test data)
    coordinates: object | None  # train_label_coordinates.csv
    problems: list[str] = field(default_factory=list)  # rows or files that cannot be used, one line each


def _read_csv(path: Path, columns: tuple[str, ...]):
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype={"study_id": str, "series_id": str})
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path.name}: {type(exc).__name__}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{path.name} lacks column(s) {', '.join(missing)}")
    return table


def read_rsna(root: str | Path, split: str | None = None) -> RsnaData:
    """Read the layout under ``root``; ``split`` defaults to "train" when ``train.csv`` is there, else "test".

    Raises :class:`InputError` (one line) when the folder is not in the RSNA layout at all."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"RSNA data folder not found: {root}")
    split = split or ("train" if (root / "train.csv").is_file() else "test")
    desc_path = root / f"{split}_series_descriptions.csv"
    images = root / f"{split}_images"
    if not desc_path.is_file() or not images.is_dir():
        raise InputError(f"{root} is not RSNA-format data: it needs {desc_path.name} and {images.name}/")
    desc = _read_csv(desc_path, ("study_id", "series_id", "series_description"))
    data = RsnaData(root, split, {}, None, None)
    listed = set()
    for r in desc.itertuples(index=False):
        study = data.studies.setdefault(str(r.study_id), RsnaStudy(str(r.study_id)))
        folder = images / str(r.study_id) / str(r.series_id)
        n = len(list(folder.glob("*.dcm"))) if folder.is_dir() else 0
        listed.add((str(r.study_id), str(r.series_id)))
        if str(r.series_description) not in DESCRIPTIONS:
            study.problems.append(f"series {r.series_id}: unknown description {r.series_description!r}, not used")
        if n == 0:
            study.problems.append(f"series {r.series_id} ({r.series_description}): no DICOM files in {folder.relative_to(root)}")
        study.series.append(RsnaSeries(str(r.study_id), str(r.series_id), str(r.series_description), folder, n))
    for folder in sorted(p for p in images.glob("*/*") if p.is_dir()):
        if (folder.parent.name, folder.name) not in listed:
            study = data.studies.setdefault(folder.parent.name, RsnaStudy(folder.parent.name))
            study.problems.append(f"series folder {folder.name} is not in {desc_path.name}, not used")
    for study in data.studies.values():
        for d in DESCRIPTIONS:
            if not study.of(d):
                study.problems.append(f"no usable {d} series")
    if split == "train":
        _read_labels(data)
    return data


def _read_labels(data: RsnaData) -> None:
    """train.csv and train_label_coordinates.csv, with every unusable row noted."""
    labels = _read_csv(data.root / "train.csv", ("study_id", *target_columns()))
    for r in labels.itertuples(index=False):
        sid = str(r.study_id)
        if sid not in data.studies:
            data.problems.append(f"train.csv: study {sid} has labels but no images, not used")
        for col in target_columns():
            v = getattr(r, col)
            if isinstance(v, str) and v not in LABEL_VALUES:
                data.problems.append(f"train.csv: study {sid} {col} = {v!r} is not Normal/Mild, Moderate or Severe")
    data.labels = labels
    coord_path = data.root / "train_label_coordinates.csv"
    if not coord_path.is_file():
        data.problems.append("train_label_coordinates.csv missing: levels cannot be checked against labels")
        return
    coords = _read_csv(coord_path, ("study_id", "series_id", "instance_number", "condition", "level", "x", "y"))
    for r in coords.itertuples(index=False):
        study = data.studies.get(str(r.study_id))
        where = f"train_label_coordinates.csv: study {r.study_id} series {r.series_id}"
        if r.condition not in COORD_CONDITIONS or r.level not in COORD_LEVELS:
            data.problems.append(f"{where}: unknown condition/level {r.condition!r}/{r.level!r}")
        elif study is None or not any(s.series_id == str(r.series_id) and s.instances for s in study.series):
            data.problems.append(f"{where}: no such series in the images")
    data.coordinates = coords


def label_coverage(data: RsnaData) -> dict[str, tuple[int, int]]:
    """Per condition: (labelled rows, rows) over the studies with images."""
    out = {}
    if data.labels is None:
        return out
    rows = data.labels[data.labels["study_id"].astype(str).isin(data.studies)]
    for c in CONDITIONS:
        cols = [f"{c}_{lv}" for lv in LEVELS]
        out[c] = (int(rows[cols].isin(list(LABEL_VALUES)).to_numpy().sum()), len(rows) * len(cols))
    return out
