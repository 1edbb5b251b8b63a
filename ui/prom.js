// Prometheus text format (0.0.4) parsing, just enough for genledger's /metrics, and a rolling
// window of samples kept in memory by the server view.

// Parses `text` into [{name, labels: {k: v}, value}] (comments and blank lines skipped).
export function parseProm(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3])) !== null) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

// Sum of the samples called `name` whose labels include every pair of `match`; null if none.
export function sum(samples, name, match = {}) {
  let total = null;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).some(([k, v]) => s.labels[k] !== v)) continue;
    total = (total ?? 0) + s.value;
  }
  return total;
}

// The last `seconds` of points {t (ms), v}, oldest first.
export class Window {
  constructor(seconds) { this.ms = seconds * 1000; this.points = []; }
  push(t, v) {
    this.points.push({ t, v });
    while (this.points.length && this.points[0].t < t - this.ms) this.points.shift();
  }
  last() { return this.points.length ? this.points[this.points.length - 1].v : null; }
}
