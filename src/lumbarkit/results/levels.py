"""Stage 2 output: the named vertebrae and discs of a scan and their VerSe label map."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lumbarkit.levels import DISC_OFFSET, VERTEBRA_IDS, VERTEBRA_NAMES, disc_name, lumbar_count_of
from lumbarkit.results.labelmap import LabelMap


@dataclass(frozen=True)
class LevelInstance:
    """One named structure: a vertebral body or a disc."""

    name: str  # "L4" or "L4/L5"
    label: int  # VerSe id
    kind: str  # "vertebra" or "disc"
    centroid_mm: tuple[float, float, float]  # RAS
    volume_mm3: float
    confidence: float  # 0..1, confidence of the level name
    slice_index: int  # sagittal slice holding most of the structure


@dataclass(frozen=True)
class Naming:
    """How far the level names of a scan can be trusted (``result.json`` ``spine.naming``)."""

    confidence: float  # 0..1, the lowest name confidence along the chain
    uncertain: bool  # true exactly when a naming cue is missing or disagrees (``reasons``)
    reasons: tuple[str, ...]
    anchor: str  # how the lumbosacral junction was found: "sacrum", "disc over unsegmented bone", ..., "none"
    lumbar_vertebrae: int  # 4, 5 or 6
    lumbar_declared: bool  # the count was given by the user (else usual anatomy, 5, assumed)
    cues: dict = field(default_factory=dict)  # the numbers judged (gap ratios, area ratios, lumbosacral angle in degrees)

    def as_dict(self) -> dict:
        return {"confidence": self.confidence, "uncertain": self.uncertain, "reasons": list(self.reasons),
                "anchor": self.anchor, "lumbar_vertebrae": self.lumbar_vertebrae, "lumbar_declared": self.lumbar_declared,
                "cues": dict(self.cues)}


@dataclass(frozen=True)
class Levels:
    """Named vertebrae and discs of a scan (top to bottom), and the VerSe label map on its grid."""

    instances: tuple[LevelInstance, ...]
    segmentation: LabelMap
    sacrum_found: bool
    warnings: tuple[str, ...] = field(default_factory=tuple)
    midline_slices: tuple[int, ...] = ()
    naming: Naming | None = None

    @property
    def discs(self) -> tuple[LevelInstance, ...]:
        return tuple(i for i in self.instances if i.kind == "disc")

    @property
    def vertebrae(self) -> tuple[LevelInstance, ...]:
        return tuple(i for i in self.instances if i.kind == "vertebra")

    def user_warnings(self) -> list[str]:
        """The naming warnings a reader sees: one line with the reasons when the names are uncertain, and what
        localisation assumed only then (an anchor found another way than the sacrum class is no warning by itself)."""
        if self.naming is None:
            return list(self.warnings)
        if not self.naming.uncertain:
            return []
        return [f"level names uncertain: {'; '.join(self.naming.reasons)}", *self.warnings]

    def names(self) -> list[str]:
        return [i.name for i in self.instances]

    @classmethod
    def from_label_map(cls, scan, label_map: LabelMap) -> "Levels":
        """Levels named by a given VerSe label map (e.g. a manual segmentation) on ``scan``'s grid: every vertebra and
        disc id present, top to bottom, with confidence 1 (the names are the user's). No model runs."""
        labels = label_map.labels
        present = set(label_map.present_labels)
        lumbar = lumbar_count_of(v for v in present if v in VERTEBRA_NAMES or v - DISC_OFFSET in VERTEBRA_NAMES)
        order = sorted([(v, 0) for v in present if v in VERTEBRA_NAMES]
                       + [(v - DISC_OFFSET, 1) for v in present if v > DISC_OFFSET and v - DISC_OFFSET in VERTEBRA_NAMES])
        voxel_mm3 = float(np.prod(scan.spacing_mm))
        instances = []
        for v, is_disc in order:
            lid = v + DISC_OFFSET if is_disc else v
            name = disc_name(VERTEBRA_NAMES[v], lumbar) if is_disc else VERTEBRA_NAMES[v]
            idx = np.argwhere(labels == lid)
            centroid = scan.voxel_to_mm(idx.mean(axis=0))
            instances.append(LevelInstance(name, lid, "disc" if is_disc else "vertebra", tuple(round(float(c), 3) for c in centroid),
                                           round(float(len(idx) * voxel_mm3), 1), 1.0, int(np.bincount(idx[:, 0]).argmax())))
        seg = LabelMap(labels, label_map.affine, {i.name: 1.0 for i in instances})
        naming = Naming(1.0, False, (), "label map", lumbar, True)
        return cls(tuple(instances), seg, VERTEBRA_IDS["S1"] in present, naming=naming)
