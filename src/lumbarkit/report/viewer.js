// lumbarkit report viewer: slices, label overlay, window/level, zoom/pan, and per-disc evidence. No network.
function lkViewer() {
  "use strict";
  const D = JSON.parse(document.getElementById("lk-data").textContent);
  const $ = (id) => document.getElementById(id);
  const canvas = $("lk-canvas"), ctx = canvas.getContext("2d");
  const st = { s: 0, k: 0, overlay: true, opacity: 0.4, win: 255, lev: 128, zoom: 1, px: 0, py: 0, disc: null };
  const cache = new Map();  // "s/k" -> {gray: Uint8ClampedArray, index: Uint8ClampedArray}
  window.lkState = st;

  function decode(uri, w, h) {
    return new Promise((resolve) => {
      const img = new Image();
      img.onload = () => {
        const c = document.createElement("canvas"); c.width = w; c.height = h;
        const g = c.getContext("2d"); g.drawImage(img, 0, 0);
        resolve(g.getImageData(0, 0, w, h).data);
      };
      img.src = uri;
    });
  }
  async function slice(s, k) {
    const key = s + "/" + k;
    if (!cache.has(key)) {
      const S = D.series[s];
      cache.set(key, Promise.all([decode(S.slices[k], S.cols, S.rows), decode(S.labels[k], S.cols, S.rows)])
        .then(([gray, index]) => ({ gray, index })));
    }
    return cache.get(key);
  }
  function geometry() {
    const S = D.series[st.s];
    const w = canvas.width, h = canvas.height;
    const aspect = S.col_mm / S.row_mm;  // width of a pixel relative to its height
    const base = Math.min(w / (S.cols * aspect), h / S.rows);
    const sy = base * st.zoom, sx = sy * aspect;
    const ox = (w - S.cols * sx) / 2 + st.px, oy = (h - S.rows * sy) / 2 + st.py;
    return { S, sx, sy, ox, oy };
  }
  let drawing = 0;
  async function render() {
    const ticket = ++drawing;
    const S = D.series[st.s];
    const data = await slice(st.s, st.k);
    if (ticket !== drawing) return;
    const rect = canvas.parentElement.getBoundingClientRect();
    canvas.width = Math.max(200, Math.floor(rect.width)); canvas.height = Math.max(200, Math.floor(rect.height));
    const off = document.createElement("canvas"); off.width = S.cols; off.height = S.rows;
    const oc = off.getContext("2d"), im = oc.createImageData(S.cols, S.rows), px = im.data;
    const lo = st.lev - st.win / 2, scale = 255 / Math.max(st.win, 1), a = st.overlay ? st.opacity : 0;
    for (let i = 0; i < S.cols * S.rows; i++) {
      let v = (data.gray[4 * i] - lo) * scale; v = v < 0 ? 0 : v > 255 ? 255 : v;
      let r = v, g = v, b = v;
      const lab = data.index[4 * i];
      if (lab && a > 0) { const c = S.table[lab - 1].color; r = v * (1 - a) + c[0] * a; g = v * (1 - a) + c[1] * a; b = v * (1 - a) + c[2] * a; }
      px[4 * i] = r; px[4 * i + 1] = g; px[4 * i + 2] = b; px[4 * i + 3] = 255;
    }
    oc.putImageData(im, 0, 0);
    const G = geometry();
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, G.ox, G.oy, S.cols * G.sx, S.rows * G.sy);
    if (st.overlay) drawNames(G);
    if (st.disc !== null && st.s === 0) drawDisc(G, D.discs[st.disc]);
    $("lk-slice-out").textContent = (st.k + 1) + " / " + S.slices.length;
    document.body.dataset.slice = String(st.k);
    document.body.dataset.series = String(st.s);
    document.body.dataset.overlay = st.overlay ? "on" : "off";
    document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
  }
  function drawNames(G) {
    ctx.font = "12px system-ui, sans-serif"; ctx.textBaseline = "middle";
    for (const n of G.S.names) {
      const x = G.ox + (n.col + 0.5) * G.sx, y = G.oy + (n.row + 0.5) * G.sy;
      const t = n.name, w = ctx.measureText(t).width + 6;
      const x0 = n.kind === "disc" ? x + 28 : x - 28 - w;
      ctx.fillStyle = "rgba(0,0,0,0.6)"; ctx.fillRect(x0, y - 8, w, 16);
      ctx.fillStyle = n.kind === "disc" ? "#ffd27f" : "#9fd0ff"; ctx.fillText(t, x0 + 3, y);
    }
  }
  function drawDisc(G, d) {
    if (d.box) {
      ctx.strokeStyle = "#ff3b30"; ctx.lineWidth = 2; ctx.setLineDash(d.slice === st.k ? [] : [6, 4]);
      ctx.strokeRect(G.ox + d.box[0] * G.sx - 4, G.oy + d.box[1] * G.sy - 4, (d.box[2] - d.box[0] + 1) * G.sx + 8, (d.box[3] - d.box[1] + 1) * G.sy + 8);
    }
    ctx.strokeStyle = "#4cd964"; ctx.lineWidth = 2;
    for (const m of d.measures) for (const l of m.lines) {
      ctx.setLineDash(l.slice === st.k ? [] : [5, 4]);
      ctx.beginPath();
      ctx.moveTo(G.ox + (l.x0 + 0.5) * G.sx, G.oy + (l.y0 + 0.5) * G.sy);
      ctx.lineTo(G.ox + (l.x1 + 0.5) * G.sx, G.oy + (l.y1 + 0.5) * G.sy); ctx.stroke();
    }
    ctx.setLineDash([]);
  }
  function esc(t) { return String(t).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]); }
  function bars(g) {
    return "<div class='bars' data-task='" + esc(g.task) + "'><b>" + esc(g.task.replace(/_/g, " ")) + ": " + esc(g.value) + "</b>" +
      g.classes.map((c, i) => "<div class='bar'><span>" + esc(c) + "</span><i style='width:" + Math.round(g.p[i] * 100) +
        "%'></i><em>" + g.p[i].toFixed(2) + "</em></div>").join("") + "</div>";
  }
  function showDisc(i) {
    st.disc = i; st.s = 0; st.k = D.discs[i].slice;
    $("lk-series").value = "0"; syncSlider();
    const d = D.discs[i];
    const crops = d.crops.map((u) => "<img class='crop' alt='" + esc(d.level) + " crop' src='" + u + "'>").join("");
    const hot = Object.entries(d.hotspots).map(([t, u]) => "<figure><img alt='" + esc(d.level + " " + t) + "' src='" + u + "'><figcaption>" + esc(t) + "</figcaption></figure>").join("");
    const meas = d.measures.map((m) => "<tr><td>" + esc(m.name) + "</td><td>" + (m.value === null ? "<span class='muted'>" + esc(m.missing || "not measured") + "</span>" : esc(m.value + " " + m.unit)) + "</td></tr>").join("");
    const notes = d.notes.map((n) => "<li>" + esc(n) + "</li>").join("");
    $("lk-detail").innerHTML = "<h2>Disc " + esc(d.level) + " <span class='muted'>slice " + (d.slice + 1) + ", name confidence " + d.confidence.toFixed(2) + "</span></h2>" +
      (crops ? "<div class='crops'>" + crops + "</div>" : "<p class='muted'>not graded</p>") +
      "<div class='grades'>" + d.grades.map(bars).join("") + "</div>" +
      (hot ? "<h3>Evidence</h3><div class='hot'>" + hot + "</div>" : "") +
      (notes ? "<ul class='warn'>" + notes + "</ul>" : "") +
      (meas ? "<h3>Measurements</h3><table class='meas'>" + meas + "</table>" : "");
    document.querySelectorAll("tr[data-disc]").forEach((r) => r.classList.toggle("selected", Number(r.dataset.disc) === i));
    render();
  }
  function syncSlider() {
    const sl = $("lk-slice"); sl.max = String(D.series[st.s].slices.length - 1); sl.value = String(st.k);
  }
  function step(delta) {
    const n = D.series[st.s].slices.length;
    st.k = Math.min(n - 1, Math.max(0, st.k + delta)); syncSlider(); render();
  }
  $("lk-slice").addEventListener("input", (e) => { st.k = Number(e.target.value); render(); });
  $("lk-series").addEventListener("change", (e) => { st.s = Number(e.target.value); st.k = D.series[st.s].mid; st.zoom = 1; st.px = st.py = 0; syncSlider(); render(); });
  $("lk-overlay").addEventListener("change", (e) => { st.overlay = e.target.checked; render(); });
  $("lk-opacity").addEventListener("input", (e) => { st.opacity = Number(e.target.value) / 100; render(); });
  $("lk-window").addEventListener("input", (e) => { st.win = Number(e.target.value); render(); });
  $("lk-level").addEventListener("input", (e) => { st.lev = Number(e.target.value); render(); });
  $("lk-zoom-in").addEventListener("click", () => { st.zoom *= 1.25; render(); });
  $("lk-zoom-out").addEventListener("click", () => { st.zoom = Math.max(0.5, st.zoom / 1.25); render(); });
  $("lk-reset").addEventListener("click", () => { st.zoom = 1; st.px = st.py = 0; st.win = 255; st.lev = 128; $("lk-window").value = "255"; $("lk-level").value = "128"; render(); });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    if (e.ctrlKey) { st.zoom = Math.max(0.5, st.zoom * (e.deltaY < 0 ? 1.15 : 1 / 1.15)); render(); } else step(e.deltaY > 0 ? 1 : -1);
  }, { passive: false });
  canvas.tabIndex = 0;
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" && e.target.type === "range" && e.target.id !== "lk-slice") return;
    if (e.target.id === "lk-slice") return;  // the slider moves itself
    if (e.key === "ArrowUp" || e.key === "ArrowRight") { e.preventDefault(); step(1); }
    if (e.key === "ArrowDown" || e.key === "ArrowLeft") { e.preventDefault(); step(-1); }
  });
  let drag = null;
  canvas.addEventListener("mousedown", (e) => { drag = { x: e.clientX, y: e.clientY, px: st.px, py: st.py, moved: false }; });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; st.px = drag.px + dx; st.py = drag.py + dy; render(); }
  });
  window.addEventListener("mouseup", (e) => {
    if (drag && !drag.moved && st.s === 0) {
      const r = canvas.getBoundingClientRect(), G = geometry();
      const x = (e.clientX - r.left - G.ox) / G.sx, y = (e.clientY - r.top - G.oy) / G.sy;
      const hit = D.discs.findIndex((d) => d.box && x >= d.box[0] - 2 && x <= d.box[2] + 2 && y >= d.box[1] - 2 && y <= d.box[3] + 2);
      if (hit >= 0) showDisc(hit);
    }
    drag = null;
  });
  document.querySelectorAll("tr[data-disc]").forEach((r) => r.addEventListener("click", () => showDisc(Number(r.dataset.disc))));
  window.addEventListener("resize", () => render());
  st.k = D.series[0].mid; syncSlider(); render();
}
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", lkViewer); else lkViewer();
