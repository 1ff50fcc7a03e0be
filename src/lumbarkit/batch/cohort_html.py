"""``cohort.html`` beside ``cohort.csv``: a page to review a cohort: grade distributions per level, measurements
against their plausible ranges, the series with warnings or errors (each linking to its own report), and the
disc table, filterable by level and Pfirrmann grade. Self-contained, offline; links are relative."""

from __future__ import annotations

import csv
import json
from html import escape
from pathlib import Path

import numpy as np

from lumbarkit.batch.cohort import COHORT_CSV, ERRORS_CSV, VERTEBRAE_CSV, completed_ids, level_rank

# cohort column -> (plausible-range key, unit, which table)
MEASURES = {"disc_height_middle_mm": ("disc_height", "mm", "discs"), "disc_height_index": ("disc_height_index", "", "discs"),
            "slip_percent": ("slip_percent", "%", "discs"), "disc_canal_ap_mm": ("canal_ap", "mm", "discs"),
            "height_middle_mm": ("height_middle", "mm", "vertebrae"), "depth_ap_mm": ("depth_ap", "mm", "vertebrae"),
            "wedge_ratio": ("wedge_ratio", "", "vertebrae")}

SCRIPT = """
document.addEventListener('DOMContentLoaded',function(){
 const lv=document.getElementById('f-level'),pf=document.getElementById('f-pfirrmann');
 function apply(){let n=0;document.querySelectorAll('#disc-rows tr[data-level]').forEach(function(r){
  const ok=(!lv.value||r.dataset.level===lv.value)&&(!pf.value||r.dataset.pfirrmann===pf.value);
  r.style.display=ok?'':'none';if(ok)n++;});document.getElementById('f-count').textContent=n+' discs shown';}
 lv.addEventListener('change',apply);pf.addEventListener('change',apply);apply();});
"""


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _floats(rows: list[dict], column: str) -> np.ndarray:
    vals = []
    for r in rows:
        try:
            vals.append(float(r.get(column, "")))
        except ValueError:
            continue
    return np.array(vals)


def _link(outdir: Path, sid: str) -> str:
    report = outdir / sid / "report.html"
    return f"<a href='{escape(sid)}/report.html'>{escape(sid)}</a>" if report.is_file() else escape(sid)


def _distribution(discs: list[dict]) -> str:
    levels = sorted({r["level"] for r in discs}, key=level_rank)
    head = "".join(f"<th>Pfirrmann {g}</th>" for g in range(1, 6)) + "".join(f"<th>Modic {m}</th>" for m in range(4))
    body = []
    for lv in levels:
        at = [r for r in discs if r["level"] == lv]
        cells = [sum(r.get("pfirrmann") == str(g) for r in at) for g in range(1, 6)]
        cells += [sum(r.get("modic") == str(m) for r in at) for m in range(4)]
        body.append(f"<tr><td>{escape(lv)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr><th>level</th>{head}</tr>{''.join(body)}</table>"


def _ranges(discs: list[dict], vertebrae: list[dict]) -> str:
    from lumbarkit.stages.s3_measure.discs import MAX_DISC_HEIGHT_MM
    from lumbarkit.stages.s3_measure.plausible import RANGES

    ranges = {**RANGES, "disc_height": (0.0, MAX_DISC_HEIGHT_MM, "taller: a body between was missed")}
    body = []
    for column, (key, unit, table) in MEASURES.items():
        v = _floats(discs if table == "discs" else vertebrae, column)
        lo, hi = ranges.get(key, (None, None, ""))[:2]
        if not len(v):
            body.append(f"<tr><td>{escape(column)}</td><td>0</td><td colspan='5' class='muted'>none measured</td></tr>")
            continue
        outside = int(((v < lo) | (v > hi)).sum()) if lo is not None else 0
        rng = f"{lo:g} to {hi:g} {unit}" if lo is not None else "–"
        body.append(f"<tr><td>{escape(column)}</td><td>{len(v)}</td><td>{v.min():.1f}</td><td>{np.median(v):.1f}</td>"
                    f"<td>{v.max():.1f}</td><td>{escape(rng)}</td><td class='{'flag' if outside else ''}'>{outside}</td></tr>")
    return ("<table><tr><th>measure</th><th>n</th><th>min</th><th>median</th><th>max</th><th>plausible range</th>"
            f"<th>outside</th></tr>{''.join(body)}</table>")


def _problems(outdir: Path, errors: list[dict]) -> str:
    body = []
    for sid in completed_ids(outdir):
        try:
            warnings = json.loads((outdir / sid / "result.json").read_text(encoding="utf-8")).get("warnings", [])
        except (OSError, ValueError):
            warnings = ["result.json unreadable"]
        if warnings:
            items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
            body.append(f"<tr data-status='warnings'><td>{_link(outdir, sid)}</td><td>warnings</td><td><ul>{items}</ul></td></tr>")
    for e in errors:
        body.append(f"<tr data-status='error'><td>{escape(e.get('series_id', ''))}</td><td class='flag'>error</td>"
                    f"<td>{escape(e.get('reason', ''))}</td></tr>")
    if not body:
        return "<p class='muted'>No series with warnings or errors.</p>"
    return f"<table class='problems'><tr><th>series</th><th>status</th><th>what</th></tr>{''.join(body)}</table>"


def _disc_table(outdir: Path, discs: list[dict]) -> str:
    levels = sorted({r["level"] for r in discs}, key=level_rank)
    opts = "".join(f"<option>{escape(lv)}</option>" for lv in levels)
    grades = "".join(f"<option>{g}</option>" for g in range(1, 6))
    cols = ("pfirrmann", "modic", "ldd_3class", "disc_height_middle_mm", "slip_percent", "disc_canal_ap_mm")
    rows = "".join(
        f"<tr data-level='{escape(r['level'])}' data-pfirrmann='{escape(r.get('pfirrmann', ''))}'><td>{_link(outdir, r['series_id'])}</td>"
        f"<td>{escape(r['level'])}</td>" + "".join(f"<td>{escape(r.get(c, '') or '–')}</td>" for c in cols) + "</tr>"
        for r in discs)
    head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in ("series", "level", *cols))
    return (f"<div class='filters'><label>level <select id='f-level'><option value=''>all</option>{opts}</select></label> "
            f"<label>Pfirrmann <select id='f-pfirrmann'><option value=''>all</option>{grades}</select></label> "
            f"<span id='f-count' class='muted'></span></div><div class='tablewrap'><table><thead><tr>{head}</tr></thead>"
            f"<tbody id='disc-rows'>{rows}</tbody></table></div>")


def write_cohort_html(outdir: Path) -> Path:
    """Write ``cohort.html`` from the cohort tables and ``errors.csv`` already written in ``outdir``."""
    from lumbarkit.report.html import CSS
    from lumbarkit.report.outputs import write_text
    from lumbarkit.results.scan_result import RESEARCH_NOTICE

    outdir = Path(outdir)
    discs, vertebrae, errors = _rows(outdir / COHORT_CSV), _rows(outdir / VERTEBRAE_CSV), _rows(outdir / ERRORS_CSV)
    series = len(completed_ids(outdir))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>lumbarkit cohort</title><style>{CSS}.cohort{{display:block}}.filters{{margin-bottom:8px;font-size:13px}}
.problems ul{{margin:0;padding-left:16px;text-align:left}}</style></head><body>
<header><h1>Cohort review</h1><p>{series} series analysed · {len(discs)} discs · {len(errors)} errors</p></header>
<div class="notice"><strong>{escape(RESEARCH_NOTICE)}</strong></div>
<main class="cohort">
<section><h2>Grades per level</h2>{_distribution(discs)}</section>
<section><h2>Measurements against their plausible ranges</h2>{_ranges(discs, vertebrae)}
<p class="muted">A value outside its range is reported missing with the reason in the series' result.json; the
count here is what the tables still hold outside it.</p></section>
<section><h2>Series with warnings or errors</h2>{_problems(outdir, errors)}</section>
<section><h2>Discs</h2>{_disc_table(outdir, discs)}</section>
</main><script>{SCRIPT}</script></body></html>
"""
    return write_text(outdir / "cohort.html", page)
