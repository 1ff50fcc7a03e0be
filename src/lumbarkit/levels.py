"""Vertebra and disc names with their VerSe label ids.

Vertebrae use VerSe ids (T10=17 ... L5=24, L6=25, S1=26). A disc gets 100 + the id of the vertebra
above it (L4/L5 = 123, L5/S1 = 124). The spinal canal is 100, as in SPIDER.

Transitional anatomy: a spine has 4, 5 (usual) or 6 lumbar vertebrae (``lumbar``). With six, L6 (25)
lies between L5 and S1 (discs L5/L6 = 124, L6/S1 = 125); with four, S1 follows L4 (disc L4/S1 = 123).
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


LUMBAR_COUNTS = (4, 5, 6)  # lumbar vertebrae a spine may have (transitional anatomy: 4 or 6)


def _check_lumbar(lumbar: int) -> int:
    if lumbar not in LUMBAR_COUNTS:
        raise ValueError(f"a spine has 4, 5 or 6 lumbar vertebrae, not {lumbar}")
    return lumbar


def vertebra_below(name: str, lumbar: int = 5) -> str:
    """Name of the vertebra below ``name`` in a spine of ``lumbar`` lumbar vertebrae (L5 -> S1, T12 -> L1)."""
    if name == f"L{_check_lumbar(lumbar)}" or (name.startswith("L") and vertebra_id(name) > 19 + lumbar):
        return "S1"
    vid = vertebra_id(name) + 1
    if vid not in VERTEBRA_NAMES:
        raise ValueError(f"no vertebra below {name!r}")
    return VERTEBRA_NAMES[vid]


def vertebra_above(name: str, lumbar: int = 5) -> str:
    """Name of the vertebra above ``name`` in a spine of ``lumbar`` lumbar vertebrae (S1 -> L5, L1 -> T12)."""
    if name == "S1":
        return f"L{_check_lumbar(lumbar)}"
    vid = vertebra_id(name) - 1
    if vid not in VERTEBRA_NAMES:
        raise ValueError(f"no vertebra above {name!r}")
    return VERTEBRA_NAMES[vid]


def lumbar_count_of(names) -> int:
    """Lumbar vertebrae implied by vertebra names or ids in view: 6 when L6 is there, 4 when S1 follows
    L4 directly (L4 and S1 present, L5 absent), else 5."""
    ids = {vertebra_id(n) if isinstance(n, str) else int(n) for n in names}
    ids |= {i - DISC_OFFSET for i in ids if i > DISC_OFFSET}
    if VERTEBRA_IDS["L6"] in ids:
        return 6
    if {VERTEBRA_IDS["L4"], VERTEBRA_IDS["S1"]} <= ids and VERTEBRA_IDS["L5"] not in ids:
        return 4
    return 5


def disc_name(upper: str, lumbar: int = 5) -> str:
    """Disc below vertebra ``upper``: ``disc_name("L4") == "L4/L5"``, ``disc_name("L5", lumbar=6) == "L5/L6"``."""
    return f"{upper}/{vertebra_below(upper, lumbar)}"


def adjacent(upper: str, lower: str) -> bool:
    """Whether ``lower`` directly follows ``upper`` in a spine of 4, 5 or 6 lumbar vertebrae."""
    return any(vertebra_below(upper, n) == lower for n in LUMBAR_COUNTS)


def disc_id(name: str) -> int:
    """Label id of a disc name such as ``"L4/L5"`` (100 + id of the upper vertebra)."""
    upper, _, lower = name.partition("/")
    if not lower or upper not in VERTEBRA_IDS or lower not in VERTEBRA_IDS or not adjacent(upper, lower):
        raise ValueError(f"unknown disc name {name!r}")
    return DISC_OFFSET + vertebra_id(upper)


def label_name(label: int, lumbar: int = 5) -> str:
    """Name of a VerSe label id in a spine of ``lumbar`` lumbar vertebrae: vertebra, disc or ``"canal"``."""
    if label == CANAL_ID:
        return "canal"
    if label in VERTEBRA_NAMES:
        return VERTEBRA_NAMES[label]
    if label - DISC_OFFSET in VERTEBRA_NAMES:
        return disc_name(VERTEBRA_NAMES[label - DISC_OFFSET], lumbar)
    raise ValueError(f"unknown label id {label}")


def disc_from_bottom(index: int) -> str:
    """Lumbar disc counted from the bottom as SPIDER does: 1 = L5/S1, 2 = L4/L5, ..."""
    if not 1 <= index <= len(LUMBAR_DISCS):
        raise ValueError(f"disc index {index} outside 1..{len(LUMBAR_DISCS)}")
    return LUMBAR_DISCS[-index]
