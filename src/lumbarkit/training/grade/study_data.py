"""Study-level grading samples: per patient and disc, the T1 and T2 crops side by side as channels.

SPIDER grades each disc once per patient, so every series of a patient shares its labels. A study
sample stacks the patient's crops of one disc in :data:`STUDY_SEQUENCES` order: channel 0 the T1
crop, channel 1 the T2 crop (the 2D T2 series, else the T2 SPACE mid-slice). A sequence the patient
does not have is an all-zero channel, exactly what inference feeds for a study without it. Crops come
from each series' own localisation (aligned per disc by :mod:`lumbarkit.stages.s4_crops`), so the
channels show the same disc, centred and horizontal, without registration.
"""

from __future__ import annotations

import numpy as np

from lumbarkit.training.grade.data import GradeDataset

STUDY_SEQUENCES = ("T1", "T2")
# SPIDER series kinds that fill each channel, in order of preference
CHANNEL_SOURCES = {"T1": ("t1",), "T2": ("t2", "t2_SPACE")}


def sequences_label(present) -> str:
    """``"T1+T2"``, ``"T2"``, ... for the channels present (in :data:`STUDY_SEQUENCES` order)."""
    return "+".join(s for s, p in zip(STUDY_SEQUENCES, present) if p) or "none"


def study_dataset(data: GradeDataset) -> GradeDataset:
    """One sample per (patient, disc): images ``(N, 2, H, W)`` (T1, T2; zeros where missing).

    ``series`` holds the SPIDER series used per channel (``"12_t1|12_t2"``, empty part when missing) and
    ``sequence`` the channels present (``"T1+T2"``, ``"T2"``, ``"T1"``). Labels come from the patient's
    gradings, shared by all of its series."""
    if data.images.shape[1] != 1:
        raise ValueError("study samples stack single-slice crops; this cache holds multi-slice crops")
    by_key: dict[tuple[str, str], dict[str, int]] = {}
    for i, (patient, level, kind) in enumerate(zip(data.patient, data.level, data.sequence)):
        by_key.setdefault((str(patient), str(level)), {})[str(kind)] = i
    images, labels, patients, series, sequences, levels = [], [], [], [], [], []
    h, w = data.images.shape[2:]
    for (patient, level), rows in sorted(by_key.items()):
        stack = np.zeros((len(STUDY_SEQUENCES), h, w), dtype=np.float32)
        used = []
        for c, name in enumerate(STUDY_SEQUENCES):
            row = next((rows[k] for k in CHANNEL_SOURCES[name] if k in rows), None)
            used.append("" if row is None else str(data.series[row]))
            if row is not None:
                stack[c] = data.images[row, 0]
        first = next(iter(rows.values()))
        images.append(stack)
        labels.append({k: int(v[first]) for k, v in data.labels.items()})
        patients.append(patient)
        series.append("|".join(used))
        sequences.append(sequences_label([bool(u) for u in used]))
        levels.append(level)
    label_arrays = {k: np.array([row[k] for row in labels], dtype=np.int64) for k in data.labels}
    meta = {**data.meta, "study_sequences": list(STUDY_SEQUENCES), "channel_sources": {k: list(v) for k, v in CHANNEL_SOURCES.items()}}
    return GradeDataset(np.stack(images), label_arrays, np.array(patients), np.array(series), np.array(sequences),
                        np.array(levels), data.spec, meta)


def keep_channels(images: np.ndarray, keep: tuple[str, ...]) -> np.ndarray:
    """A copy of study ``images`` with every channel not named in ``keep`` blanked (a study without it)."""
    out = np.array(images, dtype=np.float32, copy=True)
    for c, name in enumerate(STUDY_SEQUENCES):
        if name not in keep:
            out[:, c] = 0
    return out


def single_sequence_samples(data: GradeDataset, patients) -> GradeDataset:
    """Every crop of ``patients``' series as a study sample holding that sequence alone (T1 in channel 0; T2 and
    T2 SPACE in channel 1): more training samples, each one a study with one sequence."""
    wanted = set(str(p) for p in patients)
    channel_of = {kind: c for c, name in enumerate(STUDY_SEQUENCES) for kind in CHANNEL_SOURCES[name]}
    rows = [i for i in range(len(data)) if str(data.patient[i]) in wanted and str(data.sequence[i]) in channel_of]
    images = np.zeros((len(rows), len(STUDY_SEQUENCES), *data.images.shape[2:]), dtype=np.float32)
    for k, i in enumerate(rows):
        images[k, channel_of[str(data.sequence[i])]] = data.images[i, 0]
    idx = np.array(rows, dtype=int)
    sequences = np.array([STUDY_SEQUENCES[channel_of[str(data.sequence[i])]] for i in rows])
    return GradeDataset(images, {k: v[idx] for k, v in data.labels.items()}, data.patient[idx], data.series[idx], sequences,
                        data.level[idx], data.spec, data.meta)


def concatenate(a: GradeDataset, b: GradeDataset) -> GradeDataset:
    return GradeDataset(np.concatenate([a.images, b.images]), {k: np.concatenate([a.labels[k], b.labels[k]]) for k in a.labels},
                        np.concatenate([a.patient, b.patient]), np.concatenate([a.series, b.series]),
                        np.concatenate([a.sequence, b.sequence]), np.concatenate([a.level, b.level]), a.spec, a.meta)
