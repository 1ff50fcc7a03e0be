"""Central canal stenosis at each disc, from the dural sac there and behind the adjacent bodies.

The AP diameter of the segmented sac at a disc (``DiscMeasurements.canal_ap``) is set against the
sac behind the two adjacent bodies (the median of those measured): ``canal_ratio``. The flag needs
both a narrow sac and a focal narrowing (:func:`lumbarkit.results.measurements.canal_stenosis`), so a
sac segmented thin along its whole length, or a lateral slice, does not read as stenosis.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lumbarkit.results.measurements import (
    DiscMeasurements,
    Measure,
    VertebraMeasurements,
    canal_stenosis,
    missing_measure,
)
from lumbarkit.stages.s3_measure.plausible import check


def flag_canals(discs: tuple[DiscMeasurements, ...], by_name: dict[str, VertebraMeasurements]) -> tuple[DiscMeasurements, ...]:
    """The discs with ``canal_ratio`` and ``canal_stenosis`` set (None / missing where the sac is not measured)."""
    out = []
    for d in discs:
        if not d.canal_ap.ok:
            out.append(replace(d, canal_stenosis=None))
            continue
        refs = [v.canal_ap.value for v in (by_name.get(d.upper), by_name.get(d.lower)) if v is not None and v.canal_ap.ok]
        if not refs:
            why = "no dural sac measured behind the adjacent bodies to compare with"
            out.append(replace(d, canal_ratio=missing_measure("canal_ratio", "ratio", why, d.canal_ap.slice_index),
                               canal_stenosis=None))
            continue
        ratio = check(Measure("canal_ratio", float(d.canal_ap.value) / float(np.median(refs)), "ratio", d.canal_ap.slice_index))
        flag = canal_stenosis(float(d.canal_ap.value), float(ratio.value)) if ratio.ok else None
        out.append(replace(d, canal_ratio=ratio, canal_stenosis=flag))
    return tuple(out)
