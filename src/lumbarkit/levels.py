"""Vertebra and disc names with their VerSe label ids.

Vertebrae use VerSe ids (T10=17 ... L5=24, S1=26). A disc gets 100 + the id of the vertebra
above it (L4/L5 = 123, L5/S1 = 124). The spinal canal is 100, as in SPIDER.
"""

from __future__ import annotations

VERTEBRA_IDS: dict[str, int] = {
    **{f"C{i}": i for i in range(1, 8)},
    **{f"T{i}": 7 + i for i in range(1, 13)},
    **{f"L{i}": 19 + i for i in range(1, 6)},
    "L6": 25,
    "S1": 26,
}
VERTEBRA_NAMES: dict[int, str] = {v: k for k, v in VERTEBRA_IDS.items()}
CANAL_ID = 100
DISC_OFFSET = 100

# The lumbar region lumbarkit names, top to bottom.
LUMBAR_VERTEBRAE = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
LUMBAR_DISCS = ("T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")


def vertebra_id(name: str) -> int:
    """VerSe id of a vertebra name such as ``"L4"``."""
    try:
        return VERTEBRA_IDS[name]
    except KeyError:
        raise ValueError(f"unknown vertebra name {name!r}") from None


def vertebra_below(name: str) -> str:
    """Name of the vertebra below ``name`` (L5 -> S1, T12 -> L1)."""
    if name == "L5":
        return "S1"
    vid = vertebra_id(name) + 1
    return VERTEBRA_NAMES[vid]


def vertebra_above(name: str) -> str:
    """Name of the vertebra above ``name`` (S1 -> L5, L1 -> T12)."""
    if name == "S1":
        return "L5"
    vid = vertebra_id(name) - 1
    if vid not in VERTEBRA_NAMES:
        raise ValueError(f"no vertebra above {name!r}")
    return VERTEBRA_NAMES[vid]


def disc_name(upper: str) -> str:
    """Disc below vertebra ``upper``: ``disc_name("L4") == "L4/L5"``."""
    return f"{upper}/{vertebra_below(upper)}"


def disc_id(name: str) -> int:
    """Label id of a disc name such as ``"L4/L5"`` (100 + id of the upper vertebra)."""
    upper, _, lower = name.partition("/")
    if not lower or vertebra_below(upper) != lower:
        raise ValueError(f"unknown disc name {name!r}")
    return DISC_OFFSET + vertebra_id(upper)


def label_name(label: int) -> str:
    """Name of a VerSe label id: vertebra, disc or ``"canal"``."""
    if label == CANAL_ID:
        return "canal"
    if label in VERTEBRA_NAMES:
        return VERTEBRA_NAMES[label]
    if label - DISC_OFFSET in VERTEBRA_NAMES:
        return disc_name(VERTEBRA_NAMES[label - DISC_OFFSET])
    raise ValueError(f"unknown label id {label}")


def disc_from_bottom(index: int) -> str:
    """Lumbar disc counted from the bottom as SPIDER does: 1 = L5/S1, 2 = L4/L5, ..."""
    if not 1 <= index <= len(LUMBAR_DISCS):
        raise ValueError(f"disc index {index} outside 1..{len(LUMBAR_DISCS)}")
    return LUMBAR_DISCS[-index]
