"""QC overlay of stage-4 measurements: the measured lines and level names on a sagittal slice.

Every line is drawn from the RAS endpoints stored in the measurement (mapped back through the
scan's affine), so the picture shows exactly what was measured. Lines measured on another slice
than the one shown are dashed.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from lumbarkit.results.measurements import RETRO_FLAG_MM, SpineMeasurements
from lumbarkit.scan import Scan

log = logging.getLogger(__name__)

# measure name -> colour
COLOURS = {
    "height_anterior": "#ffd400", "height_middle": "#ffd400", "height_posterior": "#ffd400",
    "depth_ap": "#00c8ff", "superior_endplate_angle": "#ff4fd8", "inferior_endplate_angle": "#ff4fd8",
    "ivd_distance_anterior": "#9cff57", "ivd_distance_posterior": "#9cff57",
    "slip_mm": "#ff3b30", "slip_percent": "#ff3b30", "canal_ap": "#ff9500", "lordosis": "#ff4fd8",
}
_SKIP = {"slip_percent", "lordosis"}  # same line as slip_mm / the endplate angles
_DISC_HEIGHT = "#4cd964"


def qc_slice(measurements: SpineMeasurements, scan: Scan) -> int:
    """The slice most bodies were measured on (the scan's middle slice if none)."""
    counts = Counter(v.slice_index for v in measurements.vertebrae if v.slice_index is not None and v.missing_reason is None)
    return counts.most_common(1)[0][0] if counts else scan.mid_slice


def _label_text(v) -> str:
    if not (v.height_anterior.ok and v.height_middle.ok and v.height_posterior.ok):
        return f"{v.name}: n/a"
    text = f"{v.name}  {v.height_anterior.value:.0f}/{v.height_middle.value:.0f}/{v.height_posterior.value:.0f}"
    if v.genant_grade.ok and v.genant_grade.value:
        text += f"  G{int(v.genant_grade.value)}"
    return text


def draw_measurements(scan: Scan, measurements: SpineMeasurements, path: str | Path,
                      labels: np.ndarray | None = None, slice_index: int | None = None, dpi: int = 110,
                      disc_notes: dict[str, str] | None = None) -> Path:
    """Write a PNG of one sagittal slice with the measured lines, level names and grades.

    Parameters
    ----------
    scan : the measured scan.
    measurements : result of :func:`lumbarkit.stages.s3_measure.measure` on that scan.
    path : output PNG path.
    labels : optional label map on the scan grid; its outlines are drawn thinly.
    slice_index : slice to show; default the slice most bodies were measured on.
    dpi : resolution of the 9-inch-high figure.
    disc_notes : extra text per disc name (e.g. its grades), appended to the disc's label.
    """
    from matplotlib.figure import Figure

    k = qc_slice(measurements, scan) if slice_index is None else int(slice_index)
    image = scan.array[k]
    _, row_mm, col_mm = scan.spacing_mm
    rows, cols = image.shape
    height_in = 9.0
    width_in = max(4.0, min(16.0, height_in * cols * col_mm / (rows * row_mm)))
    fig = Figure(figsize=(width_in + 0.2, height_in), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 0.95))
    lo, hi = np.percentile(image, (1, 99.5))
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, aspect=row_mm / col_mm, interpolation="nearest")
    if labels is not None:
        sl = np.asarray(labels)[k]
        for value in np.unique(sl[sl > 0]):
            ax.contour(sl == value, levels=[0.5], colors=["#5ac8fa"], linewidths=0.4, alpha=0.6)

    def pix(point_mm) -> tuple[float, float]:
        kij = scan.mm_to_voxel(np.asarray(point_mm, dtype=float))
        return float(kij[2]), float(kij[1])

    for measure_name, line in measurements.lines():
        if measure_name in _SKIP:
            continue
        colour = COLOURS.get(measure_name, _DISC_HEIGHT)
        (x0, y0), (x1, y1) = pix(line.start_mm), pix(line.end_mm)
        style = "-" if line.slice_index == k else "--"
        ax.plot([x0, x1], [y0, y1], style, color=colour, linewidth=1.2)
        if measure_name.startswith("slip"):
            ax.plot([x0], [y0], "o", color=colour, markersize=2.5)
    for v in measurements.vertebrae:
        if v.centroid_mm is None:
            continue
        x, y = pix(v.centroid_mm)
        if v.corners_mm is not None and v.slice_index is not None:
            xs, ys = zip(*(pix(c) for c in v.corners_mm))
            x = min(xs) - 0.02 * cols
            ax.plot(list(xs) + [xs[0]], list(ys) + [ys[0]], ":", color="white", linewidth=0.6, alpha=0.7)
        colour = "#ff3b30" if (v.genant_grade.ok and v.genant_grade.value) or v.missing_reason else "white"
        ax.text(x, y, _label_text(v), color=colour, fontsize=8, ha="right", va="center",
                bbox=dict(facecolor="black", alpha=0.5, pad=1, edgecolor="none"))
    for d in measurements.discs:
        _disc_label(ax, d, pix, cols, (disc_notes or {}).get(d.name))
    title = f"slice {k}"
    if measurements.lordosis.ok:
        title += f"   lordosis {measurements.lordosis_method}: {measurements.lordosis.value:.1f} deg"
    title += "   heights Ha/Hm/Hp mm, dashed = other slice"
    fig.text(0.01, 0.975, title, fontsize=9, va="center", color="white")
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_axis_off()
    out = Path(path)
    fig.savefig(out, facecolor="black", metadata={"Software": None})
    log.info("wrote %s", out)
    return out


def _disc_label(ax, d, pix, cols: int, note: str | None) -> None:
    """Write a disc's name, ``note`` (e.g. its grades), slip and narrow canal beside its middle height line."""
    ref = d.height_middle if d.height_middle.ok else d.slip_mm
    if not ref.lines:
        return
    x, y = pix(np.mean([ref.lines[0].start_mm, ref.lines[0].end_mm], axis=0))
    text = d.name
    if note:
        text += f"  {note}"
    if d.slip_percent.ok:
        text += f"  slip {d.slip_percent.value:+.0f}%"
        if d.meyerding_grade.value:
            text += f" (M{int(d.meyerding_grade.value)})"
        elif d.retrolisthesis.ok and d.retrolisthesis.value >= RETRO_FLAG_MM:
            text += " (retro)"
    if d.canal_stenosis in ("absolute", "relative"):
        text += f"  canal {d.canal_ap.value:.0f} mm"
    colour = "#ff3b30" if d.meyerding_grade.ok and d.meyerding_grade.value else "#9cff57"
    ax.text(x + 0.08 * cols, y, text, color=colour, fontsize=7, ha="left", va="center",
            bbox=dict(facecolor="black", alpha=0.5, pad=1, edgecolor="none"))
