"""The slice viewer of ``report.html``: every sagittal slice of every series, the label overlay, and per disc its
crops, grade probabilities, evidence maps and measurement lines, embedded in the page (no server, no network).

Slices are embedded as JPEG (quality ``JPEG_QUALITY``, windowed to the series' 0.5-99.5th percentiles), label maps
as PNG holding an index into the series' label table; the page's script (``viewer.js``) draws them on a canvas.
"""

from __future__ import annotations

import base64
import io
import json
from html import escape
from pathlib import Path

import numpy as np

JPEG_QUALITY = 88
ASSETS = Path(__file__).resolve().parent


def _uri(array: np.ndarray, fmt: str) -> str:
    from PIL import Image

    buf = io.BytesIO()
    img = Image.fromarray(array)
    if fmt == "JPEG":
        img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    else:
        img.save(buf, format="PNG", compress_level=6)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _jpeg_of(path: Path) -> str:
    """A PNG file re-encoded as a JPEG data URI (evidence maps are smooth colour pictures: a third of the bytes)."""
    import imageio.v3 as iio

    return _uri(np.asarray(iio.imread(path))[..., :3], "JPEG")


def file_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _label_table(labels: np.ndarray) -> tuple[list[dict], np.ndarray]:
    """The label ids present with names and colours, and the lookup id -> table index (0 = background)."""
    from lumbarkit.report.outputs import segment_names
    from lumbarkit.report.qc_segment import label_colour

    counts = np.bincount(np.clip(labels, 0, None).ravel())  # ids are small non-negative integers: faster than unique
    ids = [int(v) for v in np.flatnonzero(counts) if v > 0]
    names = segment_names(np.array(ids, dtype=np.int32))
    lut = np.zeros(int(max(ids, default=0)) + 1, dtype=np.uint8)
    table = []
    for n, lid in enumerate(ids, start=1):
        lut[lid] = n
        r, g, b = (int(255 * c) for c in label_colour(lid))
        table.append({"id": lid, "name": names.get(lid, str(lid)), "color": [r, g, b]})
    return table, lut


def series_data(name: str, result) -> dict:
    """One series for the viewer: slices, label maps, label table and the named structures' positions (pixels)."""
    scan, labels = result.scan, result.levels.segmentation.labels
    lo, hi = np.percentile(scan.array[:, ::2, ::2], (0.5, 99.5))  # display window: every 4th voxel is enough
    gray = np.clip((scan.array - lo) / (hi - lo if hi > lo else 1.0) * 255, 0, 255).astype(np.uint8)
    table, lut = _label_table(labels)
    index = lut[np.clip(labels, 0, len(lut) - 1)]
    names = []
    for inst in (*result.levels.vertebrae, *result.levels.discs):
        k, i, j = scan.mm_to_voxel(np.asarray(inst.centroid_mm, dtype=float))
        names.append({"name": inst.name, "kind": inst.kind, "row": round(float(i), 1), "col": round(float(j), 1)})
    _, row_mm, col_mm = scan.spacing_mm
    return {"name": name, "rows": int(scan.shape[1]), "cols": int(scan.shape[2]), "row_mm": row_mm, "col_mm": col_mm,
            "slices": [_uri(s, "JPEG") for s in gray], "labels": [_uri(s, "PNG") for s in index],
            "table": table, "names": names, "mid": int(scan.mid_slice)}


def _lines(scan, measure) -> list[dict]:
    out = []
    for ln in measure.lines:
        a, b = scan.mm_to_voxel(np.asarray(ln.start_mm, float)), scan.mm_to_voxel(np.asarray(ln.end_mm, float))
        out.append({"x0": round(float(a[2]), 1), "y0": round(float(a[1]), 1), "x1": round(float(b[2]), 1),
                    "y1": round(float(b[1]), 1), "slice": int(ln.slice_index)})
    return out


def disc_data(result, hotspot_files: list[Path], crop_pairs: dict[str, Path] | None = None) -> list[dict]:
    """Per disc: where it is (slice, box in pixels), its grades with probabilities, crops, evidence maps and
    measurements with their lines and missing reasons."""
    from lumbarkit.tasks import get_task

    scan, labels = result.scan, result.levels.segmentation.labels
    grades = {g.level: g for g in result.grades.discs} if result.grades is not None else {}
    crops = {c.name: c for c in result.crops.crops} if result.crops is not None else {}
    maps = {}
    for p in hotspot_files:
        level, task = p.stem.split("_", 1)  # hotspots/<L4-L5>_<task>.png
        maps.setdefault(level.replace("-", "/"), {})[task] = _jpeg_of(p)
    out = []
    for inst in result.levels.discs:
        # the slice the disc was graded on (its crop's centre), else the slice holding most of it
        k = int(round(crops[inst.name].geometry.centre_voxel[0])) if inst.name in crops else int(inst.slice_index)
        rows, cols = np.nonzero(labels[k] == inst.label)
        box = [int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())] if len(rows) else None
        rec = {"level": inst.name, "slice": k, "box": box, "confidence": inst.confidence, "grades": [], "crops": [],
               "hotspots": maps.get(inst.name, {}), "measures": [], "notes": []}
        g = grades.get(inst.name)
        if g is not None:
            for task, value in g.grades.items():
                t = get_task(task)
                rec["grades"].append({"task": task, "value": t.class_names[t.classes.index(int(value))],
                                      "classes": list(t.class_names), "p": [round(float(v), 3) for v in g.probabilities[task]]})
        if crop_pairs and inst.name in crop_pairs:
            rec["crops"].append(file_uri(crop_pairs[inst.name]))
        elif inst.name in crops:
            img = crops[inst.name].image
            img = img[img.shape[0] // 2] if img.ndim == 3 else img
            rec["crops"].append(_uri((np.clip(img, 0, 1) * 255).astype(np.uint8), "PNG"))
        d = result.measurements.disc(inst.name) if result.measurements is not None else None
        if d is not None:
            for m in d.measures():
                rec["measures"].append({"name": m.name.replace("_", " "), "value": None if not m.ok else round(float(m.value), 2),
                                        "unit": m.unit, "missing": m.missing_reason, "lines": _lines(scan, m)})
            if d.missing_reason:
                rec["notes"].append(d.missing_reason)
        rec["notes"] += [w for w in result.warnings if inst.name in w]
        out.append(rec)
    return out


def viewer_section(result, hotspot_files: list[Path], extra_series=(), crop_pairs: dict[str, Path] | None = None) -> str:
    """The viewer's HTML (toolbar, canvas, disc panel) with its data and script."""
    primary = f"{result.scan.metadata.sequence} (primary)" if extra_series else result.scan.metadata.sequence
    data = {"series": [series_data(primary, result)] + [series_data(n, r) for n, r in extra_series],
            "discs": disc_data(result, hotspot_files, crop_pairs)}
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    script = (ASSETS / "viewer.js").read_text()
    options = "".join(f"<option value='{i}'>{escape(s['name'])}</option>" for i, s in enumerate(data["series"]))
    return f"""<section class="viewer" id="viewer"><h2>Slices</h2>
<div class="toolbar">
<label>series <select id="lk-series">{options}</select></label>
<label>slice <input id="lk-slice" type="range" min="0" value="0"> <output id="lk-slice-out"></output></label>
<label><input id="lk-overlay" type="checkbox" checked> labels</label>
<label>opacity <input id="lk-opacity" type="range" min="0" max="100" value="40"></label>
<label>window <input id="lk-window" type="range" min="10" max="400" value="255"></label>
<label>level <input id="lk-level" type="range" min="0" max="255" value="128"></label>
<span class="zoom"><button id="lk-zoom-in" type="button">+</button><button id="lk-zoom-out" type="button">&minus;</button><button id="lk-reset" type="button">reset</button></span>
</div>
<div class="stage"><canvas id="lk-canvas" aria-label="sagittal slice"></canvas></div>
<p class="muted hint">Mouse wheel or arrow keys: slices · Ctrl + wheel or +/&minus;: zoom · drag: pan · click a disc (on the image or in the table) for its evidence.</p>
</section>
<script type="application/json" id="lk-data">{payload}</script>
<script>{script}</script>"""


DETAIL = ('<section class="detail" id="lk-detail"><h2>Disc</h2><p class="muted">Click a disc row or a disc on the image '
          'for its crops, grade probabilities, evidence maps and measurements.</p></section>')
