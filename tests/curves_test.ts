import assert from "node:assert";
import { type CurveSeries, curvesSvg, logScaleHelps } from "../core/io/curves.ts";
import { PALETTE, renderSvg } from "../core/io/charts.ts";
import { all, parseXml, polylines, texts } from "./helpers/svg.ts";
import { rng } from "./helpers/random.ts";

/** A noisy decaying loss (2.3 → ~0.05, so more than a decade) and a rising accuracy. */
function curves(n: number, seed: number) {
  const next = rng(seed);
  const loss: [number, number][] = [];
  const acc: [number, number][] = [];
  for (let k = 0; k < n; k++) {
    loss.push([k * 50, 2.3 * Math.exp(-k / 10) + 0.04 + 0.01 * next()]);
    acc.push([k * 50, 1 - 0.9 * Math.exp(-k / 15) - 0.02 * next()]);
  }
  return { loss, acc };
}

const OPTS = { title: "MLP on MNIST" };

Deno.test("curves: every series drawn in its panel, loss on a log axis, no NaN anywhere", () => {
  const { loss, acc } = curves(60, 1);
  const testLoss: [number, number][] = [[1000, 0.4], [2000, NaN], [Infinity, 0.2], [2950, 0.1]];
  const series: CurveSeries[] = [
    { name: "train loss", points: loss, panel: "loss", color: 0 },
    { name: 'test <loss> & "co"', points: testLoss, panel: "loss", color: 2, markers: true },
    { name: "train accuracy", points: acc, panel: "accuracy", color: 1 },
  ];
  const src = curvesSvg(series, OPTS);
  assert.match(src, /^<svg/);
  assert.doesNotMatch(src, /NaN|Infinity|undefined/, "no non-finite coordinate or label");
  const svg = parseXml(src);
  assert.strictEqual(svg.attrs.width, "900");
  const lines = polylines(svg);
  const line = (color: number, n: number) =>
    lines.find((l) => l.stroke === PALETTE[color] && l.points.length === n);
  const trainLoss = line(0, 60);
  const trainAcc = line(1, 60);
  const test = line(2, 2); // the two finite points of the test loss
  assert.ok(trainLoss && trainAcc && test, "a polyline per series, non-finite points skipped");
  // Later steps are further right; a falling loss goes down the page, a rising accuracy up.
  assert.ok(trainLoss.points[59]![0] > trainLoss.points[0]![0]);
  assert.ok(trainLoss.points[59]![1] > trainLoss.points[0]![1]);
  assert.ok(trainAcc.points[59]![1] < trainAcc.points[0]![1]);
  // Accuracy is in its own, lower panel.
  const lowestLoss = Math.max(...trainLoss.points.map((p) => p[1]));
  assert.ok(trainAcc.points.every((p) => p[1] > lowestLoss), "accuracy panel below the loss one");
  // On a log axis equal ratios are equal distances: 2.34 → 0.234 spans as far as 0.234 → 0.0234
  // would; on a linear one the first tenth of the drop would take 90% of the height.
  const y = (v: number) => {
    const [a, b] = [trainLoss.points[0]!, trainLoss.points[59]!];
    const [va, vb] = [loss[0]![1], loss[59]![1]];
    return a[1] + (b[1] - a[1]) * (Math.log(v / va) / Math.log(vb / va));
  };
  const k = loss.findIndex(([, v]) => v < 0.5);
  assert.ok(Math.abs(trainLoss.points[k]![1] - y(loss[k]![1])) < 1.5, "loss plotted on log scale");
  const labels = texts(svg);
  for (const t of ["MLP on MNIST", "loss (log scale)", "accuracy", "optimizer step", "0.1", "1"]) {
    assert.ok(labels.includes(t), `text "${t}" in ${JSON.stringify(labels)}`);
  }
  for (const s of series) assert.ok(labels.includes(s.name), `legend has "${s.name}"`);
  // Markers (per-epoch values) on the test loss, none on the window-by-window train curves.
  const markers = all(svg, "path").filter((p) =>
    p.attrs.stroke === PALETTE[2] && p.attrs.ecmeta_ssr_type === "chart"
  );
  assert.strictEqual(markers.length, 2);
});

Deno.test("curves: a loss within one decade stays on a linear axis", () => {
  const loss: [number, number][] = [[0, 0.9], [100, 0.5], [200, 0.3]];
  const svg = parseXml(curvesSvg([{ name: "train loss", points: loss, panel: "loss" }], OPTS));
  const labels = texts(svg);
  assert.ok(labels.includes("loss") && !labels.includes("loss (log scale)"), labels.join("|"));
  assert.ok(logScaleHelps([2.3, 0.2]) && logScaleHelps([10, 1]));
  assert.ok(!logScaleHelps([2.3, 0.3]) && !logScaleHelps([1, 0, 0.01]) && !logScaleHelps([5]));
});

Deno.test("curves: empty series, a single point, and a loss that reaches zero", () => {
  const none = curvesSvg([], OPTS);
  assert.ok(texts(parseXml(none)).includes("no data yet"));

  const series: CurveSeries[] = [
    { name: "train loss", points: [[0, 2], [10, 0.1], [20, 0]], panel: "loss", color: 0 },
    { name: "test accuracy", points: [[20, 0.42]], panel: "accuracy", color: 2, markers: true },
    { name: "validation accuracy", points: [[1, NaN]], panel: "accuracy", color: 1 },
  ];
  const src = curvesSvg(series, { ...OPTS, width: 400, height: 300 });
  assert.doesNotMatch(src, /NaN|Infinity/);
  const svg = parseXml(src);
  assert.strictEqual(svg.attrs.width, "400");
  const labels = texts(svg);
  assert.ok(labels.includes("validation accuracy (no data)"), labels.join("|"));
  // A log axis could not place the zero: the loss stays linear, every point drawn.
  assert.ok(labels.includes("loss") && !labels.includes("loss (log scale)"), labels.join("|"));
  assert.ok(polylines(svg).some((l) => l.stroke === PALETTE[0] && l.points.length === 3));
  // A lone point gets a marker so it shows at all.
  const lone = all(svg, "path").filter((p) =>
    p.attrs.stroke === PALETTE[2] && p.attrs.ecmeta_ssr_type === "chart"
  );
  assert.strictEqual(lone.length, 1);
});

Deno.test("curves: a bad size is refused, and the SVG check rejects broken XML", () => {
  assert.throws(() => renderSvg({}, { width: NaN, height: 300 }), /width must be a number ≥ 100/);
  for (const bad of ["<svg><g></svg>", '<svg a="1" a="2"/>', "<svg>x & y</svg>", "<svg/><svg/>"]) {
    assert.throws(() => parseXml(bad), /XML not well-formed/, bad);
  }
});
