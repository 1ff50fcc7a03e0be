"""Level names: the lumbosacral anchor, the walk up the chain of discs, and how far the names can be trusted."""

from __future__ import annotations

import numpy as np

from lumbarkit.levels import vertebra_above
from lumbarkit.results.levels import Naming
from lumbarkit.stages.s2_localize.blobs import Blob, blob, median_gap, points, spine_axis

NO_SACRUM_CONFIDENCE = 0.3
INFERRED_SACRUM_CONFIDENCE = 0.6
CUT_SACRUM_CONFIDENCE = 0.45
MIN_CUT_WIDTH_MM = 10.0  # bone at least this wide on the image's last row was cut by the field of view
SACRUM_LENGTH_RATIO = 1.5  # bone below the lowest disc this many disc spacings long is the sacrum
SACRUM_FRACTION = 0.4  # bone interval counts as sacral when this share of its bone is sacrum class
# ... or, for the lowest interval only, this share while no interval above reaches LUMBAR_SACRUM_SHARE: the
# contrast with the lumbar bodies above marks S1 (the v4 model on the T1 demo phantom: 0.34 below 0.0 above)
LOWEST_SACRUM_FRACTION = 0.2
LUMBAR_SACRUM_SHARE = 0.05
MISSED_DISC_GAP_RATIO = 1.7  # a disc-to-disc gap this many times the median means a missed disc
# Cues that must agree with the anchor (calibrated by benchmarks/naming.py; see the README, "How levels are named")
IRREGULAR_GAP_RATIO = (0.5, 1.4)  # a disc-to-disc gap outside this share of the median breaks the chain
MERGED_DISC_AREA_RATIO = 2.5  # a disc this many times the median disc area may be two discs read as one
RUDIMENTARY_DISC_AREA_RATIO = 0.3  # a lowest disc under this share of the one above may be a transitional segment
WEAK_ANCHORS = ("lowest body", "none")  # anchors that name nothing by themselves


def bone_length_below(bone: Blob, discs: list[Blob], pix: np.ndarray) -> float:
    """How far (mm) the bone blob reaches below the lowest disc, along that disc's normal."""
    pts = points(bone.mask, pix)
    return float(np.max((pts - discs[-1].centroid) @ discs[-1].normal)) if len(pts) else 0.0


def cut_by_image_bottom(bone: Blob, pix: np.ndarray) -> bool:
    """Whether the bone blob runs off the bottom of the image (a vertebra only partly in the field of view)."""
    return float(bone.mask[-1].sum() * pix[1]) >= MIN_CUT_WIDTH_MM


def anchor(bodies: dict[int, Blob], discs: list[Blob], sacrum_inferred: bool, sacrum_share: np.ndarray,
           pix: np.ndarray, warnings: list[str], lumbar: int = 5):
    """The interval named first and its name and confidence: S1 (the topmost sacral interval counted from the bottom;
    discs below it are sacral remnants, or S1 inferred), else the last lumbar vertebra. Returns (anchor, name,
    confidence, discs, bodies, sacrum_found, kind) with discs and bodies trimmed to the named ones, ``kind`` saying
    how the anchor was found; appends what it assumed to ``warnings``."""
    s1 = None
    for iv in sorted(bodies, reverse=True):
        if bodies[iv].score >= SACRUM_FRACTION:
            s1 = iv
        elif s1 is not None:
            break
    if s1 is None and len(bodies) >= 3:
        lowest = max(bodies)
        above = [b.score for iv, b in bodies.items() if iv != lowest]
        if bodies[lowest].score >= LOWEST_SACRUM_FRACTION and max(above) < LUMBAR_SACRUM_SHARE:
            s1 = lowest
    sacrum_found = s1 is not None
    if sacrum_found:
        s1_mask = np.zeros(sacrum_share.shape, dtype=bool)
        for iv in range(s1, len(discs) + 1):
            if iv in bodies:
                s1_mask |= bodies[iv].mask
        bodies = {iv: b for iv, b in bodies.items() if iv < s1}
        bodies[s1] = blob(s1_mask, sacrum_share, pix)
        discs = discs[:s1]
        anchor, anchor_name, anchor_conf, kind = s1, "S1", float(bodies[s1].score), "sacrum"
    elif sacrum_inferred and bodies:
        anchor, anchor_name, anchor_conf, kind = len(discs), "S1", INFERRED_SACRUM_CONFIDENCE, "disc over unsegmented bone"
        warnings.append("sacrum not segmented: inferred below the lowest disc, which has bone only nearby above it")
    elif bodies and discs and max(bodies) == len(discs) and bone_length_below(bodies[len(discs)], discs, pix) >= SACRUM_LENGTH_RATIO * median_gap(discs):
        # bone below the lowest disc reaching much further down than one vertebra would, with no disc in it: the sacrum
        anchor, anchor_name, anchor_conf, kind = len(discs), "S1", INFERRED_SACRUM_CONFIDENCE, "long bone below"
        warnings.append("sacrum not classified: the bone below the lowest disc was taken as S1")
    elif bodies and discs and max(bodies) > 0 and cut_by_image_bottom(bodies[max(bodies)], pix):
        # a lumbar field of view nearly always includes L5/S1, so a vertebra cut off below the lowest disc is S1
        # (a 'disc' found below it, in the last millimetres of the image, is a sacral remnant)
        anchor, anchor_name, anchor_conf, kind = max(bodies), "S1", CUT_SACRUM_CONFIDENCE, "bone cut by the image"
        discs = discs[:anchor]
        warnings.append("sacrum not classified: the bone below the lowest disc runs off the image and was taken as S1")
    elif bodies:
        anchor, anchor_name, anchor_conf, kind = max(bodies), f"L{lumbar}", NO_SACRUM_CONFIDENCE, "lowest body"
        discs = discs[: anchor + 1] if anchor < len(discs) else discs
        warnings.append(f"sacrum not seen: the lowest vertebral body was called L{lumbar}; level names are uncertain")
    else:
        anchor, anchor_name, anchor_conf, kind = len(discs), "S1", 0.0, "none"
        if discs:
            warnings.append("no vertebral bodies found: disc names assume the lowest disc is L5/S1")

    return anchor, anchor_name, anchor_conf, discs, bodies, sacrum_found, kind


def walk_up(discs: list[Blob], anchor: int, anchor_name: str, anchor_conf: float, warnings: list[str],
            lumbar: int = 5) -> dict[int, tuple[str, float]]:
    """Names and confidences of the intervals above the anchor, counting missed discs in large gaps."""
    gaps = disc_gaps(discs)
    typical = float(np.median(gaps)) if len(gaps) else 0.0
    names: dict[int, tuple[str, float]] = {anchor: (anchor_name, anchor_conf)}
    name, conf = anchor_name, anchor_conf
    for iv in range(min(anchor, len(discs)) - 1, -1, -1):
        # crossing disc iv from interval iv+1 up to interval iv
        steps = 1
        if iv + 1 < anchor and iv < len(gaps) and typical > 0 and gaps[iv] > MISSED_DISC_GAP_RATIO * typical:
            steps = int(round(gaps[iv] / typical))
            warnings.append(f"a disc seems missed between detected discs {iv + 1} and {iv + 2} from the top")
        conf = min(conf, discs[iv].score) * (0.6 if steps > 1 else 1.0)
        try:
            for _ in range(steps):
                name = vertebra_above(name, lumbar)
        except ValueError:
            break
        names[iv] = (name, conf)

    return names


def disc_gaps(discs: list[Blob]) -> np.ndarray:
    """Distances (mm) between consecutive discs along the spine axis, top to bottom."""
    if len(discs) < 2:
        return np.zeros(0)
    axis = spine_axis(np.array([d.centroid for d in discs]))
    return np.diff([float(d.centroid @ axis) for d in discs])


def lumbosacral_angle_deg(discs: list[Blob]) -> float | None:
    """Angle (degrees) between the lowest disc's plane and the plane of the disc above it: L5/S1 sits at the
    lordotic bend and is tilted against L4/L5 (SPIDER, usual anatomy: see benchmarks/naming.py)."""
    if len(discs) < 2:
        return None
    cos = abs(float(discs[-1].normal @ discs[-2].normal))
    return float(np.degrees(np.arccos(np.clip(cos, 0.0, 1.0))))


def chain_cues(discs: list[Blob]) -> dict[str, float | None]:
    """Numbers the chain of named discs (top to bottom) is judged by: disc-to-disc gaps against their median,
    the largest disc area against the median, the lowest disc's area against the one above it, and the
    lumbosacral angle."""
    gaps = disc_gaps(discs)
    ratio = gaps / float(np.median(gaps)) if len(gaps) >= 2 else None
    areas = np.array([d.area_mm2 for d in discs])
    angle = lumbosacral_angle_deg(discs)

    def r(v):
        return None if v is None else round(float(v), 3)

    return {"gap_ratio_min": r(ratio.min()) if ratio is not None else None,
            "gap_ratio_max": r(ratio.max()) if ratio is not None else None,
            "disc_area_ratio_max": r(areas.max() / np.median(areas)) if len(areas) >= 3 else None,
            "lowest_disc_area_ratio": r(areas[-1] / areas[-2]) if len(areas) >= 2 else None,
            "lumbosacral_angle_deg": None if angle is None else round(angle, 1)}


def assess(discs: list[Blob], names: dict[int, tuple[str, float]], kind: str, warnings: list[str],
           lumbar: int, declared: bool) -> Naming:
    """How far the names can be trusted: the anchor and the chain of discs must agree.

    ``uncertain`` is true exactly when a cue is missing or disagrees: no lumbosacral anchor (no sacrum and no bone
    that stands for it), a missed disc counted in or a disc-to-disc gap out of line with the chain (two discs read
    as one, a disc missed or a fragment taken for a disc), a disc far larger than the others, or a lowest disc so
    small that the segment may be transitional (unless the lumbar count was declared)."""
    cues = chain_cues([d for iv, d in enumerate(discs) if iv in names and iv + 1 in names])
    reasons: list[str] = []
    if kind in WEAK_ANCHORS:
        reasons.append("no lumbosacral anchor: neither the sacrum nor bone standing for it was found")
    if any("missed" in w for w in warnings):
        reasons.append("a disc was counted in a gap of the chain")
    elif cues["gap_ratio_min"] is not None and not (
            IRREGULAR_GAP_RATIO[0] <= cues["gap_ratio_min"] and cues["gap_ratio_max"] <= IRREGULAR_GAP_RATIO[1]):
        reasons.append(f"disc spacing out of line with the chain ({cues['gap_ratio_min']:.2f}-{cues['gap_ratio_max']:.2f} "
                       "x the median gap: a disc missed, or two read as one)")
    if cues["disc_area_ratio_max"] is not None and cues["disc_area_ratio_max"] > MERGED_DISC_AREA_RATIO:
        reasons.append("one disc is far larger than the others (two discs read as one?)")
    low = cues["lowest_disc_area_ratio"]
    if low is not None and low < RUDIMENTARY_DISC_AREA_RATIO and not declared:
        reasons.append("the lowest disc is far smaller than the one above: possibly a transitional segment "
                       "(declare the lumbar count with --lumbar-vertebrae)")
    confidence = min((c for _, c in names.values()), default=0.0)
    return Naming(confidence=round(float(np.clip(confidence, 0, 1)), 3), uncertain=bool(reasons), reasons=tuple(reasons),
                  anchor=kind, lumbar_vertebrae=lumbar, lumbar_declared=declared, cues=cues)
