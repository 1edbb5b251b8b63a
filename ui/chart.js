// Small SVG charts drawn with DOM calls (no library, no inline style: the CSP allows neither).

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(w, h) {
  return el('svg', { viewBox: `0 0 ${w} ${h}`, role: 'img', preserveAspectRatio: 'xMinYMin meet' });
}

// Horizontal bars: rows [{label, value}] (value ≥ 0), largest first as given.
export function hbars(container, rows) {
  container.replaceChildren();
  const w = 480, rowH = 22, labelW = 150, valueW = 70;
  const h = Math.max(rows.length, 1) * rowH + 4;
  const s = svg(w, h);
  const max = Math.max(1, ...rows.map((r) => r.value));
  rows.forEach((r, i) => {
    const y = i * rowH + 2;
    const bw = Math.max(1, ((w - labelW - valueW) * r.value) / max);
    s.append(el('text', { x: labelW - 6, y: y + 15, 'text-anchor': 'end', class: 'bar-label' }, trim(r.label, 22)));
    s.append(el('rect', { x: labelW, y: y + 3, width: bw, height: rowH - 8, class: 'bar' }));
    s.append(el('text', { x: labelW + bw + 4, y: y + 15, class: 'bar-value' }, String(r.value)));
  });
  container.append(s);
}

// Vertical bars: rows [{label, value}] in order (days).
export function vbars(container, rows) {
  container.replaceChildren();
  const w = 960, h = 180, bottom = 22, top = 14;
  const s = svg(w, h);
  const max = Math.max(1, ...rows.map((r) => r.value));
  const slot = (w - 10) / Math.max(rows.length, 1);
  const bw = Math.max(2, Math.min(40, slot - 4));
  rows.forEach((r, i) => {
    const x = 5 + i * slot + (slot - bw) / 2;
    const bh = ((h - bottom - top) * r.value) / max;
    s.append(el('rect', { x, y: h - bottom - bh, width: bw, height: Math.max(bh, 1), class: 'bar' }));
    s.append(el('text', { x: x + bw / 2, y: h - bottom - bh - 3, 'text-anchor': 'middle', class: 'bar-value' }, String(r.value)));
    if (rows.length <= 16 || i % Math.ceil(rows.length / 16) === 0)
      s.append(el('text', { x: x + bw / 2, y: h - 6, 'text-anchor': 'middle', class: 'axis' }, r.label));
  });
  container.append(s);
}

// A line over time: points [{t (ms), v}] spanning `spanMs` up to the newest point.
export function line(container, points, spanMs, unit = '') {
  container.replaceChildren();
  const w = 960, h = 160, left = 60, bottom = 20, top = 10;
  const s = svg(w, h);
  const max = Math.max(1, ...points.map((p) => p.v));
  const end = points.length ? points[points.length - 1].t : Date.now();
  const x = (t) => left + ((w - left - 8) * (t - (end - spanMs))) / spanMs;
  const y = (v) => h - bottom - ((h - bottom - top) * v) / max;
  for (const f of [0, 0.5, 1]) {
    s.append(el('line', { x1: left, x2: w - 8, y1: y(max * f), y2: y(max * f), class: 'grid' }));
    s.append(el('text', { x: left - 6, y: y(max * f) + 4, 'text-anchor': 'end', class: 'axis' }, fmtShort(max * f) + unit));
  }
  s.append(el('text', { x: left, y: h - 4, class: 'axis' }, `-${Math.round(spanMs / 60000)} min`));
  s.append(el('text', { x: w - 8, y: h - 4, 'text-anchor': 'end', class: 'axis' }, 'now'));
  if (points.length >= 2)
    s.append(el('polyline', { points: points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' '), class: 'line' }));
  container.append(s);
}

function trim(s, n) { return s.length > n ? `${s.slice(0, n - 1)}…` : s; }
function fmtShort(v) {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return v >= 10 ? String(Math.round(v)) : v.toFixed(1).replace(/\.0$/, '');
}
