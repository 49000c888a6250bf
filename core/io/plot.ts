/**
 * Training curves as a standalone SVG: series on a shared x axis (the step), each against the
 * left axis (loss) or the right axis (accuracy), with ticks, a legend and a title. No
 * dependencies, so a run directory's `curves.svg` opens in any browser.
 *
 * @module
 */

/** One curve: `[x, y]` points (non-finite ones are skipped) drawn against one y axis. */
export interface Series {
  name: string;
  points: [number, number][];
  axis: "left" | "right";
}

/** Labels and size (pixels; default 800×480) of the plot. */
export interface PlotOptions {
  title: string;
  xLabel: string;
  leftLabel: string;
  rightLabel: string;
  width?: number;
  height?: number;
}

// Colour-blind-safe palette (Okabe–Ito); right-axis curves are also dashed so that the two
// axes can be told apart without colour.
const COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];
const FONT = 12;
const CHAR_W = 7; // rough width of one character at FONT px, for laying out the legend

/** Renders the series as an SVG document (a string starting with `<svg`). */
export function curvesSvg(series: Series[], opts: PlotOptions): string {
  const width = opts.width ?? 800;
  const height = opts.height ?? 480;
  for (const [k, v] of [["width", width], ["height", height]] as const) {
    if (!Number.isFinite(v) || v < 200) {
      throw new RangeError(`curvesSvg: ${k} must be a number ≥ 200 pixels, got ${v}`);
    }
  }
  const drawn = series.map((s, i) => ({
    ...s,
    color: COLORS[i % COLORS.length]!,
    pts: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)),
  }));
  const left = drawn.filter((s) => s.axis === "left" && s.pts.length > 0);
  const right = drawn.filter((s) => s.axis === "right" && s.pts.length > 0);

  // Legend rows below the x-axis label, wrapped to the width.
  const legendItems: { s: (typeof drawn)[number]; x: number; row: number }[] = [];
  let lx = 0;
  let row = 0;
  for (const s of drawn) {
    const w = 34 + CHAR_W * s.name.length + 18;
    if (lx > 0 && lx + w > width - 40) {
      lx = 0;
      row++;
    }
    legendItems.push({ s, x: lx, row });
    lx += w;
  }
  const legendRows = drawn.length === 0 ? 0 : row + 1;
  const m = { top: 40, left: 72, right: 72, bottom: 58 + 18 * legendRows };
  const area = {
    x: m.left,
    y: m.top,
    w: width - m.left - m.right,
    h: Math.max(40, height - m.top - m.bottom),
  };

  const xs = axisRange(drawn.flatMap((s) => s.pts.map((p) => p[0])));
  const yl = axisRange(left.flatMap((s) => s.pts.map((p) => p[1])));
  const yr = axisRange(right.flatMap((s) => s.pts.map((p) => p[1])));
  const px = (x: number) => area.x + ((x - xs.lo) / (xs.hi - xs.lo)) * area.w;
  const py = (y: number, r: Range) => area.y + area.h - ((y - r.lo) / (r.hi - r.lo)) * area.h;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="${FONT}">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    text(width / 2, 24, opts.title, { anchor: "middle", size: 15, weight: "bold" }),
  );

  // Grid lines follow the left axis when it has data, else the right one.
  const gridY = left.length > 0 ? yl : yr;
  out.push(`<g class="grid" stroke="#e4e4e4" stroke-width="1">`);
  for (const t of xs.ticks) out.push(line(px(t), area.y, px(t), area.y + area.h));
  for (const t of gridY.ticks) out.push(line(area.x, py(t, gridY), area.x + area.w, py(t, gridY)));
  out.push(`</g>`);

  out.push(`<g class="x-axis">`);
  for (const t of xs.ticks) {
    out.push(line(px(t), area.y + area.h, px(t), area.y + area.h + 5, "#333"));
    out.push(text(px(t), area.y + area.h + 18, xs.label(t), { anchor: "middle", cls: "tick" }));
  }
  out.push(text(area.x + area.w / 2, area.y + area.h + 38, opts.xLabel, { anchor: "middle" }));
  out.push(`</g>`);
  for (
    const [side, r, has, label] of [
      ["left", yl, left.length > 0, opts.leftLabel],
      ["right", yr, right.length > 0, opts.rightLabel],
    ] as const
  ) {
    if (!has) continue;
    const edge = side === "left" ? area.x : area.x + area.w;
    const dir = side === "left" ? -1 : 1;
    out.push(`<g class="${side}-axis">`);
    for (const t of r.ticks) {
      out.push(line(edge, py(t, r), edge + 5 * dir, py(t, r), "#333"));
      out.push(text(edge + 8 * dir, py(t, r) + 4, r.label(t), {
        anchor: side === "left" ? "end" : "start",
        cls: "tick",
      }));
    }
    const cx = edge + 60 * dir;
    const cy = area.y + area.h / 2;
    out.push(text(cx, cy, label, { anchor: "middle", rotate: `rotate(-90 ${cx} ${cy})` }));
    out.push(`</g>`);
  }
  out.push(
    `<rect class="plot-area" x="${area.x}" y="${area.y}" width="${area.w}" height="${area.h}" ` +
      `fill="none" stroke="#333"/>`,
  );
  if (left.length + right.length === 0) {
    out.push(text(area.x + area.w / 2, area.y + area.h / 2, "no data", { anchor: "middle" }));
  }

  for (const s of [...left, ...right]) {
    const r = s.axis === "left" ? yl : yr;
    const coords = s.pts.map(([x, y]) => `${fix(px(x))},${fix(py(y, r))}`);
    const dash = s.axis === "right" ? ` stroke-dasharray="6 3"` : "";
    out.push(
      `<polyline class="series" data-name="${esc(s.name)}" data-axis="${s.axis}" ` +
        `points="${coords.join(" ")}" fill="none" stroke="${s.color}" stroke-width="1.8"` +
        `${dash} stroke-linejoin="round"/>`,
    );
    if (s.pts.length === 1) { // a one-point polyline draws nothing: mark the point
      const [cx, cy] = coords[0]!.split(",");
      out.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${s.color}"/>`);
    }
  }

  out.push(`<g class="legend">`);
  const ly0 = area.y + area.h + 58;
  for (const { s, x, row } of legendItems) {
    const y = ly0 + 18 * row;
    const dash = s.axis === "right" ? ` stroke-dasharray="6 3"` : "";
    const x0 = area.x + x;
    out.push(
      `<line x1="${x0}" y1="${y - 4}" x2="${x0 + 28}" y2="${y - 4}" stroke="${s.color}" ` +
        `stroke-width="2"${dash}/>`,
    );
    const note = s.pts.length === 0 ? " (no data)" : "";
    out.push(text(x0 + 34, y, `${s.name}${note}`, {}));
  }
  out.push(`</g>`, `</svg>`, "");
  return out.join("\n");
}

interface Range {
  lo: number;
  hi: number;
  ticks: number[];
  label: (v: number) => string;
}

/** A range covering `values`, widened to round tick values, with about 5 ticks. */
function axisRange(values: number[]): Range {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (values.length === 0) [lo, hi] = [0, 1];
  if (lo === hi) { // one value: centre it in a range of its own magnitude
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    [lo, hi] = [lo - pad, hi + pad];
  }
  const step = niceStep((hi - lo) / 5);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const ticks: number[] = [];
  for (let k = 0; lo + k * step <= hi + step * 1e-9; k++) ticks.push(lo + k * step);
  return { lo, hi, ticks, label: (v) => formatTick(v, step) };
}

/** The smallest of 1, 2, 5 × 10^k that is ≥ `raw`. */
export function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const f of [1, 2, 5, 10]) if (f * p >= raw * (1 - 1e-9)) return f * p;
  return 10 * p;
}

/** A tick label with just enough digits to tell ticks `step` apart (`0.25`, `6000`, `2e-5`). */
export function formatTick(v: number, step: number): string {
  if (Math.abs(v) < step * 1e-6) return "0";
  const mag = Math.abs(v);
  if (mag >= 1e6 || mag < 1e-3) {
    const digits = Math.max(0, Math.floor(Math.log10(mag)) - Math.floor(Math.log10(step)));
    return v.toExponential(Math.min(digits, 6)).replace(/\.?0+e/, "e").replace("e+", "e");
  }
  return v.toFixed(Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
}

function fix(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function line(x1: number, y1: number, x2: number, y2: number, stroke?: string): string {
  const s = stroke ? ` stroke="${stroke}"` : "";
  return `<line x1="${fix(x1)}" y1="${fix(y1)}" x2="${fix(x2)}" y2="${fix(y2)}"${s}/>`;
}

function text(
  x: number,
  y: number,
  s: string,
  o: { anchor?: string; size?: number; weight?: string; rotate?: string; cls?: string },
): string {
  const attrs = [`x="${fix(x)}"`, `y="${fix(y)}"`];
  if (o.cls) attrs.push(`class="${o.cls}"`);
  if (o.anchor) attrs.push(`text-anchor="${o.anchor}"`);
  if (o.size) attrs.push(`font-size="${o.size}"`);
  if (o.weight) attrs.push(`font-weight="${o.weight}"`);
  if (o.rotate) attrs.push(`transform="${o.rotate}"`);
  return `<text ${attrs.join(" ")}>${esc(s)}</text>`;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
