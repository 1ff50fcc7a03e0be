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


HEIGHT_PX = 960  # height of the image part of qc.png
BAND_PX = 30  # title band above it


def draw_measurements(scan: Scan, measurements: SpineMeasurements, path: str | Path,
                      labels: np.ndarray | None = None, slice_index: int | None = None,
                      disc_notes: dict[str, str] | None = None) -> Path:
    """Write a PNG of one sagittal slice with the measured lines, level names and grades.

    Parameters
    ----------
    scan : the measured scan.
    measurements : result of :func:`lumbarkit.stages.s3_measure.measure` on that scan.
    path : output PNG path.
    labels : optional label map on the scan grid; its outlines are drawn thinly.
    slice_index : slice to show; default the slice most bodies were measured on.
    disc_notes : extra text per disc name (e.g. its grades), appended to the disc's label.
    """
    from PIL import Image

    from skimage.segmentation import find_boundaries

    from lumbarkit.report.draw import blend, canvas, gray_rgb, line, save_png

    k = qc_slice(measurements, scan) if slice_index is None else int(slice_index)
    image = scan.array[k]
    _, row_mm, col_mm = scan.spacing_mm
    rows, cols = image.shape
    sy = HEIGHT_PX / rows  # output pixels per voxel, rows and columns (anatomy keeps its aspect in mm)
    sx = float(np.clip(sy * col_mm / row_mm, 400 / cols, 1600 / cols))
    lo, hi = np.percentile(image, (1, 99.5))
    rgb = gray_rgb(image, lo, hi if hi > lo else lo + 1)
    if labels is not None:
        edges = find_boundaries(np.asarray(labels)[k], connectivity=1, mode="inner")
        rgb = blend(rgb, np.broadcast_to(np.array([0.353, 0.784, 0.98], np.float32), rgb.shape), 0.6 * edges)
    size = (max(1, round(cols * sx)), HEIGHT_PX)
    full = np.zeros((HEIGHT_PX + BAND_PX, size[0], 3), dtype=np.uint8)
    full[BAND_PX:] = np.asarray(Image.fromarray(rgb).resize(size, Image.NEAREST))
    img, draw = canvas(full)

    def pix(point_mm) -> tuple[float, float]:
        kij = scan.mm_to_voxel(np.asarray(point_mm, dtype=float))
        return (float(kij[2]) + 0.5) * sx, (float(kij[1]) + 0.5) * sy + BAND_PX

    for measure_name, ln in measurements.lines():
        if measure_name in _SKIP:
            continue
        colour = COLOURS.get(measure_name, _DISC_HEIGHT)
        p0, p1 = pix(ln.start_mm), pix(ln.end_mm)
        line(draw, p0, p1, colour, width=2, dash=None if ln.slice_index == k else 6)
        if measure_name.startswith("slip"):
            draw.ellipse((p0[0] - 3, p0[1] - 3, p0[0] + 3, p0[1] + 3), fill=colour)
    _vertebra_labels(draw, measurements, pix, size[0])
    for d in measurements.discs:
        _disc_label(draw, d, pix, size[0], (disc_notes or {}).get(d.name))
    title = f"slice {k}"
    if measurements.lordosis.ok:
        title += f"   lordosis {measurements.lordosis_method}: {measurements.lordosis.value:.1f} deg"
    title += "   heights Ha/Hm/Hp mm, dashed = other slice"
    from lumbarkit.report.draw import font

    draw.text((6, BAND_PX / 2), title, fill="white", font=font(13), anchor="lm")
    out = Path(path)
    save_png(img, out)
    log.info("wrote %s", out)
    return out


def _vertebra_labels(draw, measurements: SpineMeasurements, pix, width: int) -> None:
    """Each vertebra's outline (dotted) and its name with heights (and Genant grade) left of it."""
    from lumbarkit.report.draw import line, text_box

    for v in measurements.vertebrae:
        if v.centroid_mm is None:
            continue
        x, y = pix(v.centroid_mm)
        if v.corners_mm is not None and v.slice_index is not None:
            pts = [pix(c) for c in v.corners_mm]
            x = min(p[0] for p in pts) - 0.02 * width
            for a, b in zip(pts, pts[1:] + pts[:1]):
                line(draw, a, b, "#d0d0d0", width=1, dash=2)
        colour = "#ff3b30" if (v.genant_grade.ok and v.genant_grade.value) or v.missing_reason else "white"
        text_box(draw, (x, y), _label_text(v), colour, 12, anchor="rm")


def _disc_label(draw, d, pix, width: int, note: str | None) -> None:
    """Write a disc's name, ``note`` (e.g. its grades), slip and narrow canal beside its middle height line."""
    from lumbarkit.report.draw import text_box

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
    text_box(draw, (x + 0.08 * width, y), text, colour, 11, anchor="lm")
