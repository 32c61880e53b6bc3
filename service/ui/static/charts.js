// Small SVG charts, no library: a stacked area chart (one band per distribution), a line
// chart, and horizontal bars. Every series carries data-distribution="<name>".

import { visibleName } from "./api.js";

const NS = "http://www.w3.org/2000/svg";

export function color(i) {
  return `hsl(${(i * 137.508) % 360}, 62%, 52%)`;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function frame(container, height) {
  const width = Math.max(container.clientWidth, 320);
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  const pad = { left: 44, right: 8, top: 8, bottom: 22 };
  return { root, width, height, pad, w: width - pad.left - pad.right, h: height - pad.top - pad.bottom };
}

const stepLabel = (x) => `step ${x}`;

function axes(f, xs, yMax, xLabel = stepLabel, yLabel = (v) => v.toPrecision(2)) {
  const { root, pad, w, h } = f;
  const g = svg("g", { class: "axes" });
  const x0 = xs[0] ?? 0;
  const x1 = xs[xs.length - 1] ?? 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.top + h - (h * i) / 4;
    g.append(svg("line", { x1: pad.left, x2: pad.left + w, y1: y, y2: y, class: "grid" }));
    const label = svg("text", { x: pad.left - 4, y: y + 4, "text-anchor": "end" });
    label.textContent = yLabel((yMax * i) / 4);
    g.append(label);
  }
  for (const [value, anchor] of [[x0, "start"], [x1, "end"]]) {
    const label = svg("text", {
      x: anchor === "start" ? pad.left : pad.left + w, y: pad.top + h + 16, "text-anchor": anchor,
    });
    label.textContent = xLabel(value);
    g.append(label);
  }
  root.append(g);
}

function scaler(f, xs, yMax) {
  const x0 = xs[0] ?? 0;
  const span = Math.max((xs[xs.length - 1] ?? 1) - x0, 1);
  return {
    x: (v) => f.pad.left + (f.w * (v - x0)) / span,
    y: (v) => f.pad.top + f.h - (f.h * v) / (yMax || 1),
  };
}

function titled(node, text) {
  const title = svg("title");
  title.textContent = text;
  node.append(title);
  return node;
}

// names: K names; steps: x values; rows: per step a K-vector of weights (summing to 1).
export function stackedArea(container, names, steps, rows) {
  const f = frame(container, 280);
  axes(f, steps, 1);
  const s = scaler(f, steps, 1);
  const below = steps.map(() => 0);
  names.forEach((name, j) => {
    const above = rows.map((row, t) => below[t] + row[j]);
    let d = "";
    steps.forEach((x, t) => { d += `${t ? "L" : "M"}${s.x(x).toFixed(1)},${s.y(above[t]).toFixed(1)}`; });
    for (let t = steps.length - 1; t >= 0; t--) d += `L${s.x(steps[t]).toFixed(1)},${s.y(below[t]).toFixed(1)}`;
    if (steps.length) d += "Z";
    const band = svg("path", { d, fill: color(j), class: "band", "data-distribution": name });
    const last = rows.length ? rows[rows.length - 1][j] : 0;
    f.root.append(titled(band, `${visibleName(name)}: weight ${last.toFixed(3)} at step ${steps[steps.length - 1] ?? "-"}`));
    above.forEach((v, t) => { below[t] = v; });
  });
  container.replaceChildren(f.root);
}

// names: K names; xs: x values (steps unless xLabel says otherwise); rows: per x a K-vector.
// Options: yMax (default the largest value), xLabel and yLabel (axis labels), title(name, j)
// (each line's tooltip; default its name).
export function lines(container, names, xs, rows, options = {}) {
  const f = frame(container, options.height ?? 220);
  const yMax = options.yMax ?? Math.max(1e-9, ...rows.flat());
  axes(f, xs, yMax, options.xLabel, options.yLabel);
  const s = scaler(f, xs, yMax);
  names.forEach((name, j) => {
    const d = xs.map((x, t) => `${t ? "L" : "M"}${s.x(x).toFixed(1)},${s.y(rows[t][j]).toFixed(1)}`).join("");
    const line = svg("path", { d, stroke: color(j), fill: "none", class: "line", "data-distribution": name });
    f.root.append(titled(line, options.title ? options.title(name, j) : visibleName(name)));
  });
  container.replaceChildren(f.root);
}

// items: [{name, parts: [[value, className], ...], tick?: value, label}]; one row each.
export function bars(container, items, max) {
  const rowH = 18;
  const width = Math.max(container.clientWidth, 320);
  const left = 110;
  const w = width - left - 170;
  const root = svg("svg", { width, height: rowH * items.length + 4, role: "img" });
  items.forEach((item, i) => {
    const y = 2 + i * rowH;
    const g = svg("g", { "data-distribution": item.name });
    const name = svg("text", { x: left - 6, y: y + 12, "text-anchor": "end" });
    const shown = visibleName(item.name);
    name.textContent = shown.length > 16 ? shown.slice(0, 15) + "…" : shown;
    g.append(name);
    let x = left;
    for (const [value, cls] of item.parts) {
      const bw = (w * Math.max(value, 0)) / (max || 1);
      g.append(svg("rect", { x, y: y + 2, width: Math.max(bw, 0), height: rowH - 5, class: cls, fill: color(item.index) }));
      x += bw;
    }
    if (item.tick !== undefined) {
      const tx = left + (w * Math.max(item.tick, 0)) / (max || 1);
      g.append(svg("line", { x1: tx, x2: tx, y1: y, y2: y + rowH - 1, class: "tick" }));
    }
    const label = svg("text", { x: x + 4, y: y + 12 });
    label.textContent = item.label;
    g.append(label);
    root.append(titled(g, `${visibleName(item.name)}: ${item.label}`));
  });
  container.replaceChildren(root);
}
