"""The vertebral chain of the phantom: names, per-level sizes, and the stacked body quadrilaterals (mm)."""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np

from lumbarkit.levels import adjacent, lumbar_count_of, vertebra_above, vertebra_below, vertebra_id
from lumbarkit.phantom.defaults import (
    BOTTOM_CENTROID_MM,
    DEFAULT_DISC_HEIGHT_MM,
    EXTRA_ABOVE,
    SACRAL_SEGMENTS,
)
from lumbarkit.phantom.geometry import (
    perp,
    polygon_centroid,
    quad_heights,
    rotation,
    unit_vector,
)


def per_name(value, defaults: Mapping[str, float], names: Sequence[str], what: str) -> dict[str, float]:
    if value is None:
        value = {}
    if isinstance(value, (int, float)):
        out = {n: float(value) for n in names}
    else:
        unknown = set(value) - set(names)
        if unknown:
            raise ValueError(f"{what}: unknown names {sorted(unknown)} (phantom has {list(names)})")
        missing = [n for n in names if n not in value and n not in defaults]
        if missing:
            raise ValueError(f"{what}: no default for {missing}; give a value for each")
        out = {n: float(value.get(n, defaults.get(n))) for n in names}
    bad = [n for n, v in out.items() if not (np.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"{what} must be positive mm, got {[(n, out[n]) for n in bad]}")
    return out


def check_chain(vertebrae: Sequence[str]) -> list[str]:
    names = list(vertebrae)
    if len(names) < 2:
        raise ValueError("a phantom needs at least two vertebrae")
    for upper, lower in zip(names, names[1:]):
        vertebra_id(upper)
        if not adjacent(upper, lower):
            raise ValueError(f"vertebrae must be contiguous top to bottom: {upper} is not directly above {lower}")
    return names


def disc_values(value, names: Sequence[str]) -> dict[str, float]:
    below = dict(zip(names, names[1:]))
    discs = [f"{u}/{below[u]}" for u in names[:-1]]
    if isinstance(value, Mapping):  # accept "L4/L5" or the upper vertebra "L4"
        value = {(k if "/" in k else f"{k}/{below.get(k, '?')}"): v for k, v in value.items()}
    return per_name(value, DEFAULT_DISC_HEIGHT_MM, discs, "disc_height_mm")


def _level_position(name: str) -> float:
    """Ordinal position along the spine: L1 = 20 ... L5 = 24, S1 = 25 (a sixth lumbar L6 = 24.5)."""
    vid = vertebra_id(name)
    return 25.0 if name == "S1" else 24.5 if name == "L6" else float(vid)


def extended_chain(names: Sequence[str]) -> list[str]:
    """The labelled chain with ``EXTRA_ABOVE`` vertebrae above it and, if it stops short of S1, the rest down to S1
    (in a spine of as many lumbar vertebrae as the names imply: L6 among them means six)."""
    lumbar = lumbar_count_of(names)
    above: list[str] = []
    top = names[0]
    for _ in range(EXTRA_ABOVE):
        try:
            top = vertebra_above(top, lumbar)
        except ValueError:
            break
        above.insert(0, top)
    below: list[str] = []
    last = names[-1]
    while last != "S1":
        last = vertebra_below(last, lumbar)
        below.append(last)
    return above + list(names) + below


def complete(given: Mapping[str, float], value, defaults: Mapping[str, float], keys: Sequence[str], fallback: Callable[[str], float]) -> dict[str, float]:
    """``given`` (the labelled values) completed for unlabelled ``keys``: the scalar ``value`` if one was given, else defaults."""
    out = dict(given)
    for k in keys:
        if k not in out:
            out[k] = float(value) if isinstance(value, (int, float)) else float(defaults.get(k, fallback(k)))
    return out


def chain_quads(chain, labelled, heights, depths, wedge, discs, slip, lordosis_deg, tilt_deg) -> dict[str, np.ndarray]:
    """Body quadrilaterals (SA, SP, IP, IA) in plane mm of the whole drawn chain, stacked from the bottom up.

    Vertebrae above the top labelled one keep its angle; the lowest labelled body is the anchor.
    """
    quads: dict[str, np.ndarray] = {}
    first = chain.index(labelled[0])

    def local(name: str) -> np.ndarray:
        hp, d = heights[name], depths[name]
        ha = hp * wedge.get(name, 1.0)
        return np.array([[0, -ha / 2], [d, -hp / 2], [d, hp / 2], [0, ha / 2]], dtype=float)

    def theta(name: str) -> float:
        ref = labelled[0] if chain.index(name) < first else name
        return lordosis_deg * ((_level_position(ref) - 20.0) / 5.0 - 0.5)

    bottom = chain[-1]
    quads[bottom] = local(bottom) @ rotation(theta(bottom)).T
    for upper, lower in zip(chain[-2::-1], chain[:0:-1]):
        low, disc = quads[lower], f"{upper}/{lower}"
        e = (low[1] - low[0]) / np.linalg.norm(low[1] - low[0])
        m = np.array([e[1], -e[0]])  # superior normal of the lower body's superior endplate
        shape = local(upper) @ rotation(theta(upper)).T
        target = discs[disc]

        def placed(s: float) -> np.ndarray:
            return shape + (low[1] + s * m - slip.get(upper, 0.0) * e - shape[2])

        def middle(s: float) -> float:
            up = placed(s)
            return quad_heights(np.array([up[3], up[2], low[1], low[0]]), (0.5,))[0]

        h0, h1 = middle(target), middle(target + 1.0)
        s = target + (target - h0) / (h1 - h0)
        quads[upper] = placed(s)
    # the lowest labelled body is the anchor: its centroid sits at BOTTOM_CENTROID_MM and tilt turns the spine about it
    centre = polygon_centroid(quads[labelled[-1]])
    rot = rotation(tilt_deg)
    return {n: (q - centre) @ rot.T + BOTTOM_CENTROID_MM for n, q in quads.items()}


def sacral_quads(s1: np.ndarray) -> dict[str, np.ndarray]:
    """S2-S5 hanging below S1 (posterior walls aligned, curving forward)."""
    d1 = float(np.linalg.norm((s1[1] + s1[2] - s1[0] - s1[3]) / 2))
    h1 = float(np.linalg.norm(s1[2] - s1[1]))
    out: dict[str, np.ndarray] = {}
    upper = s1
    for name, f_top, f_bottom, fh, turn, gap in SACRAL_SEGMENTS:
        e = unit_vector(upper[2] - upper[3])
        n = perp(e)
        t = math.radians(turn)
        e_inf = math.cos(t) * e - math.sin(t) * n  # inferior endplate, turned by ``turn`` (positive: posterior end up)
        sp = upper[2] + gap * n
        ip = sp + fh * h1 * n
        out[name] = np.array([sp - f_top * d1 * e, sp, ip, ip - f_bottom * d1 * e_inf])
        upper = out[name]
    return out
