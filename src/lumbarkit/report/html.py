"""``report.html``: one self-contained page (images embedded as data URIs) per analysed scan."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from lumbarkit.results.measurements import RETRO_FLAG_MM
from lumbarkit.results.scan_result import RESEARCH_NOTICE
from lumbarkit.tasks import FINDINGS_ORDER
from lumbarkit.version import __version__

BINARY_FINDINGS = FINDINGS_ORDER
FINDING_NAMES = {"endplate_upper": "upper endplate defect", "endplate_lower": "lower endplate defect"}
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V"}

CSS = """
*{box-sizing:border-box}html,body{max-width:100%;overflow-x:hidden}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;font-size:13px;color:#c9cdd6}
.notice{background:#fff4d6;border-left:4px solid #f0a500;padding:8px 24px;font-size:13px}
main{padding:16px 24px;display:grid;grid-template-columns:minmax(0,1.1fr) minmax(0,1fr);gap:20px}
main>div{min-width:0}
@media (max-width:1100px){main{grid-template-columns:minmax(0,1fr)}}
section{background:#fff;border-radius:6px;padding:12px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08);margin-bottom:16px;min-width:0}
h2{font-size:15px;margin:0 0 8px}h3{font-size:13px;margin:10px 0 4px}
.tablewrap{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{padding:4px 5px;border-bottom:1px solid #e6e8ec;text-align:right;white-space:normal;overflow-wrap:break-word;vertical-align:top}
th:first-child,td:first-child{text-align:left}th{background:#f0f2f5;font-weight:600}
tr[data-disc]{cursor:pointer}tr[data-disc]:hover{background:#eef4ff}tr.selected{background:#dfeaff}
.qc img{width:100%;border-radius:4px}.warn li{color:#8a4b00;font-size:13px}
.sev-mild{color:#1e7b34}.sev-moderate{color:#a86400}.sev-severe{color:#b3261e;font-weight:600}
.flag{color:#b3261e;font-weight:600}.muted{color:#7a808c;font-weight:normal}
.hot{display:flex;flex-wrap:wrap;gap:8px}.hot figure{margin:0;font-size:11px;text-align:center}
.hot img{height:96px;border-radius:3px}dl{display:grid;grid-template-columns:auto minmax(0,1fr);gap:2px 12px;font-size:13px;margin:0}
dt{color:#5b6170}dd{margin:0;overflow-wrap:break-word;min-width:0}
.toolbar{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;font-size:12.5px;margin-bottom:8px}
.toolbar input[type=range]{width:110px;vertical-align:middle}.toolbar #lk-slice{width:180px}
.stage{position:relative;width:100%;height:min(72vh,760px);background:#000;border-radius:4px;overflow:hidden}
.stage canvas{display:block;width:100%;height:100%;cursor:crosshair}.hint{font-size:12px;margin:6px 0 0}
.crops img{max-width:100%;image-rendering:pixelated;border-radius:3px}
.bars{font-size:12px;margin:6px 0}.bar{display:grid;grid-template-columns:120px minmax(0,1fr) 40px;gap:6px;align-items:center}
.bar i{display:block;height:9px;background:#3b6fd8;border-radius:2px}.bar span{overflow-wrap:anywhere}.bar em{font-style:normal;text-align:right}
.grades{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:4px 16px}
@media print{.toolbar,.hint{display:none}main{display:block}.stage{height:60vh;break-inside:avoid}section{box-shadow:none;break-inside:avoid}
body{background:#fff}}
"""

def img_tag(path: Path, alt: str, css_class: str = "") -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    cls = f' class="{css_class}"' if css_class else ""
    return f'<img{cls} alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _num(v, digits: int = 1, unit: str = "") -> str:
    if v is None:
        return '<span class="muted">–</span>'
    return f"{v:.{digits}f}{unit}"


def _naming_fact(naming) -> str:
    if naming is None:
        return "–"
    count = f"{naming.lumbar_vertebrae} lumbar vertebrae ({'declared' if naming.lumbar_declared else 'assumed'})"
    if naming.uncertain:
        return f"UNCERTAIN: {'; '.join(naming.reasons)} · anchor: {naming.anchor} · {count}"
    return f"cues agree · anchor: {naming.anchor} · {count}"


def _levels_table(result) -> str:
    graded = {d.level: d for d in result.grades.discs} if result.grades is not None else {}
    rows = []
    for n, inst in enumerate(result.levels.discs):
        g = graded.get(inst.name)
        d = result.measurements.disc(inst.name)
        cells = [escape(inst.name), f"{inst.confidence:.2f}"]
        if g is not None:
            pf = g.grades.get("pfirrmann")
            pp = max(g.probabilities["pfirrmann"]) if pf is not None else None
            cells.append(f"{ROMAN.get(pf, pf)} <span class='muted'>({pp:.2f})</span>" if pf is not None else "–")
            cells.append(f"<span class='sev-{g.ldd}'>{escape(g.ldd)}</span>" if g.ldd else "–")
            mo = g.grades.get("modic")
            cells.append(f"{mo} <span class='muted'>({max(g.probabilities['modic']):.2f})</span>" if mo is not None else "–")
            found = [FINDING_NAMES.get(k, k) + f" ({g.probabilities[k][1]:.2f})" for k in BINARY_FINDINGS if g.grades.get(k) == 1]
            cells.append(f"<span class='flag'>{escape(', '.join(found))}</span>" if found else "none")
        else:
            cells += ["–"] * 4
        if d is not None:
            cells += [_num(d.height_anterior.value), _num(d.height_middle.value), _num(d.height_posterior.value),
                      _num(d.disc_height_index.value, 2)]
            slip = d.slip_percent.value
            mey = d.meyerding_grade.value
            retro = d.retrolisthesis.value
            cells.append(_num(slip, 0, "%") + (f" <span class='flag'>M{int(mey)}</span>" if mey else "")
                         + (f" <span class='flag'>retro {retro:.1f} mm</span>" if retro is not None and retro >= RETRO_FLAG_MM else ""))
        else:
            cells += ["–"] * 5
        rows.append(f"<tr data-disc='{n}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = ("level", "conf.", "Pfirrmann", "LDD", "Modic", "findings", "DH ant mm", "DH mid mm", "DH post mm", "DHI", "slip")
    return "<div class='tablewrap'><table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table></div>"


def _vertebra_table(result) -> str:
    conf = {i.name: i.confidence for i in result.levels.vertebrae}
    rows = []
    for v in result.measurements.vertebrae:
        genant = v.genant_grade.value
        cells = [escape(v.name), f"{conf.get(v.name, 0):.2f}", _num(v.height_anterior.value), _num(v.height_middle.value),
                 _num(v.height_posterior.value), _num(v.wedge_ratio.value, 2), _num(v.height_loss.value, 0, "%"),
                 (f"<span class='flag'>{int(genant)}</span>" if genant else _num(genant, 0)), _num(v.canal_ap.value)]
        if v.missing_reason:
            cells.append(f"<span class='muted'>{escape(v.missing_reason)}</span>")
        else:
            cells.append("")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = ("vertebra", "conf.", "Ha mm", "Hm mm", "Hp mm", "wedge", "height loss", "Genant", "canal AP mm", "note")
    return "<div class='tablewrap'><table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table></div>"


def render_report(result, outdir: Path, hotspot_files: list[Path], keep_phi: bool = False, extra: str = "",
                  extra_series=(), crop_pairs: dict | None = None) -> str:
    """The HTML text of the report for ``result`` whose images were written to ``outdir`` (``extra``: sections
    placed after the disc table, e.g. a study's series and crops; ``extra_series``: (name, result) of other series
    shown in the slice viewer; ``crop_pairs``: level -> a study's T1/T2 crop picture)."""
    from lumbarkit.report.viewer import DETAIL, viewer_section

    summary = result.input_summary(keep_phi)
    m = result.measurements
    lordosis = f"{m.lordosis.value:.1f}° ({escape(m.lordosis_method or '')})" if m.lordosis.ok else "not measured"
    facts = {
        "input": f"{summary['source_format']} · {summary['sequence']} · {summary['manufacturer'] or 'unknown vendor'}",
        "grid": " × ".join(str(v) for v in summary["shape"]) + " voxels · " + " × ".join(f"{v:g}" for v in summary["spacing_mm"]) + " mm",
        "levels": ", ".join(i.name for i in result.levels.discs) or "none",
        "level names": _naming_fact(result.levels.naming),
        "lumbar lordosis": lordosis,
        "test-time augmentation": ("on" if result.grades.tta else "off") if result.grades is not None else "–",
    }
    if keep_phi and summary.get("identifiers"):
        facts.update({k: str(v) for k, v in summary["identifiers"].items()})
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v) if k != 'lumbar lordosis' else v}</dd>" for k, v in facts.items())
    warnings = "".join(f"<li>{escape(w)}</li>" for w in result.warnings) or "<li class='muted'>none</li>"
    models = "".join(f"<tr><td>{escape(mi.stage)}</td><td>{escape(mi.name)}</td><td>{escape(mi.version)}</td>"
                     f"<td><code>{escape(mi.sha256[:16])}…</code></td></tr>" for mi in result.models)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>lumbarkit report</title><style>{CSS}</style></head><body>
<header><h1>Lumbar spine MRI analysis</h1><p>lumbarkit {escape(__version__)}</p></header>
<div class="notice"><strong>{escape(RESEARCH_NOTICE)}</strong> Grades and measurements are automatic and must be checked by a qualified reader.</div>
<main>
<div>
{viewer_section(result, hotspot_files, extra_series, crop_pairs)}
<section><h2>Scan</h2><dl>{dl}</dl></section>
<section class="warn"><h2>Warnings</h2><ul>{warnings}</ul></section>
<section class="qc"><h2>Quality control</h2><a href="qc.png" target="_blank" title="open full size">{img_tag(outdir / 'qc.png', 'QC: levels, outlines and measurement lines')}</a>
<p class="muted">Click to open the measurement picture at full size.</p></section>
</div>
<div>
{DETAIL}
<section id="discs"><h2>Discs</h2>{_levels_table(result)}
<p class="muted">Pfirrmann I–V with the grader's probability; LDD: mild (I–II), moderate (III), severe (IV–V).
DH: disc height, DHI: disc height index; slip with its Meyerding grade (M).</p></section>
<section><h2>Vertebrae</h2>{_vertebra_table(result)}
<p class="muted">Heights anterior/middle/posterior; height loss with its Genant grade.</p></section>
{extra}
<section><h2>Models</h2><table><tr><th>stage</th><th>model</th><th>version</th><th>sha256</th></tr>{models}</table></section>
</div>
</main></body></html>
"""
    return page
