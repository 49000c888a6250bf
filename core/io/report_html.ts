/**
 * A study report as one self-contained HTML page: the ECharts browser bundle and the charts'
 * options are inlined, so the file opens from disk with no network. The page draws each chart into
 * its `[data-chart]` element with ECharts' SVG renderer (tooltips on hover), and sets
 * `data-charts-rendered` on `<html>` to the number drawn, which the browser test waits for.
 *
 * @module
 */

import { bestTrial, type ReportTrial, studyCharts, type StudyReportData } from "./study_charts.ts";

/** What the page inlines besides the data. */
export interface ReportAssets {
  /** ECharts' browser bundle (`echarts/dist/echarts.min.js`). */
  echarts: string;
}

const SECTIONS: [id: string, caption: string][] = [
  ["history", "The objective of each complete trial, and the best value so far."],
  ["importance", "How much of the variance of the objective each parameter explains."],
  ["parallel", "Each line is a complete trial; its colour is its objective value."],
  [
    "intermediate",
    "What each trial reported per epoch to the pruner; pruned and failed trials are marked where " +
    "they stopped.",
  ],
];

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A script's text that cannot end the `<script>` element early. */
function scriptSafe(js: string): string {
  return js.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}

function fmt(v: number | null): string {
  if (v === null) return "";
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3)
    ? v.toExponential(4)
    : String(Number(v.toPrecision(6)));
}

function paramText(v: ReportTrial["params"][string] | undefined): string {
  if (v === undefined) return "";
  return typeof v === "number" ? fmt(v) : String(v);
}

function counts(data: StudyReportData): string {
  const by = new Map<string, number>();
  for (const t of data.trials) by.set(t.state, (by.get(t.state) ?? 0) + 1);
  return [...by].map(([s, n]) => `${n} ${s.toLowerCase()}`).join(", ") || "none";
}

function table(data: StudyReportData): string {
  const best = bestTrial(data);
  const names = data.params.map((p) => p.name);
  const head = ["trial", "state", "value", ...names, "seconds", "started", "run"]
    .map((h) => `<th>${esc(h)}</th>`).join("");
  const rows = data.trials.map((t) => {
    const run = t.runFolder
      ? `<a href="${esc(t.runFolder)}">folder</a>` +
        (t.curves ? ` · <a href="${esc(t.curves)}">curves</a>` : "")
      : "";
    const cells = [
      `${t.number}${t === best ? " ★" : ""}`,
      t.state.toLowerCase(),
      fmt(t.value),
      ...names.map((n) => paramText(t.params[n])),
      t.seconds === null ? "" : t.seconds.toFixed(1),
      t.datetimeStart ?? "",
    ].map((c) => `<td>${esc(c)}</td>`).join("");
    const cls = [`state-${t.state.toLowerCase()}`, t === best ? "best" : ""].join(" ").trim();
    return `<tr class="${cls}">${cells}<td>${run}</td></tr>`;
  });
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${rows.join("\n")}\n</tbody></table>`;
}

function summary(data: StudyReportData): string {
  const best = bestTrial(data);
  const bestLine = best
    ? `best: trial ${best.number}, value ${esc(fmt(best.value))}, ` +
      esc(Object.entries(best.params).map(([k, v]) => `${k}=${paramText(v)}`).join(", "))
    : "no complete trial yet";
  const imp = data.importances;
  const method = "error" in imp
    ? `Importances: none (${esc(imp.error)}).`
    : `Importances: ${esc(imp.method)}, fitted on ${imp.trials} complete trials; they sum to 1.`;
  const multi = data.objectives > 1
    ? `<p>The study has ${data.objectives} objectives; the charts show the first.</p>`
    : "";
  return `<p>Journal <code>${esc(data.journal)}</code> · ${data.direction} · ` +
    `${data.trials.length} trials (${
      esc(counts(data))
    }) · ${bestLine}</p>\n<p>${method}</p>${multi}`;
}

/** The page. */
export function studyReportHtml(data: StudyReportData, assets: ReportAssets): string {
  const charts = studyCharts(data);
  // `<` escaped so that no string in the data can close the script element.
  const json = JSON.stringify(charts).replace(/</g, "\\u003c");
  const sections = SECTIONS.map(([id, caption]) =>
    `<section><div class="chart" id="chart-${id}" data-chart="${id}"></div>` +
    `<p class="caption">${esc(caption)}</p></section>`
  ).join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Study ${esc(data.study)}</title>
<style>
body { font-family: sans-serif; margin: 24px auto; max-width: 1200px; padding: 0 16px; color: #222; }
h1 { margin-bottom: 4px; }
h2 { margin: 28px 0 4px; font-size: 1.2em; }
.chart { width: 100%; height: 440px; border: 1px solid #ddd; margin-top: 20px; }
.caption { margin: 4px 0 0; color: #555; font-size: 14px; }
table { border-collapse: collapse; font-size: 13px; margin-top: 8px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f2f2f2; }
tr.best { background: #fff4d6; font-weight: bold; }
tr.state-pruned td:nth-child(2) { color: #D55E00; }
tr.state-fail td:nth-child(2) { color: #b00; }
footer { margin-top: 24px; color: #777; font-size: 12px; }
</style>
</head>
<body>
<h1>Study ${esc(data.study)}</h1>
${summary(data)}
${sections}
<section><h2>Trials</h2>
${table(data)}
</section>
<footer>Written ${
    esc(data.generated)
  } by webgpu-trainer's <code>deno task report</code>; charts by Apache ECharts.</footer>
<script>${scriptSafe(assets.echarts)}</script>
<script type="application/json" id="report-charts">${json}</script>
<script>
(function () {
  var options = JSON.parse(document.getElementById("report-charts").textContent);
  var drawn = [];
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var chart = echarts.init(el, null, { renderer: "svg" });
    chart.setOption(options[el.getAttribute("data-chart")]);
    drawn.push(chart);
  });
  window.addEventListener("resize", function () { drawn.forEach(function (c) { c.resize(); }); });
  document.documentElement.setAttribute("data-charts-rendered", String(drawn.length));
})();
</script>
</body>
</html>
`;
}
