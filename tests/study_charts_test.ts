import assert from "node:assert";
import { renderSvg } from "../core/io/charts.ts";
import { studyReportHtml } from "../core/io/report_html.ts";
import {
  historyOption,
  importanceOption,
  intermediateOption,
  parallelOption,
  type ReportTrial,
  studyCharts,
  type StudyReportData,
} from "../core/io/study_charts.ts";
import { parseXml, texts } from "./helpers/svg.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

function trial(number: number, state: ReportTrial["state"], value: number | null, more = {}) {
  return {
    number,
    state,
    value,
    params: { x: number / 10, opt: number % 2 ? "sgd" : "adam", lr: 10 ** -(1 + number / 3) },
    intermediate: [] as [number, number][],
    datetimeStart: "2026-01-01T00:00:00.000000",
    datetimeComplete: null,
    seconds: null,
    ...more,
  } satisfies ReportTrial;
}

function study(direction: "minimize" | "maximize" = "minimize"): StudyReportData {
  return {
    study: "s",
    journal: "/j/s.log",
    direction,
    objectives: 1,
    trials: [
      trial(0, "COMPLETE", 0.5, { intermediate: [[0, 0.9], [1, 0.5]], runFolder: "s/trial-0" }),
      trial(1, "COMPLETE", 0.3, { intermediate: [[0, 0.8], [1, 0.3]] }),
      trial(2, "PRUNED", null, { intermediate: [[0, 1.5]] }),
      trial(3, "FAIL", null, { intermediate: [[0, 0.8], [1, 0.7]] }),
      trial(4, "COMPLETE", 0.4, { params: { x: 0.4, opt: "</script><b>", lr: 0.01, extra: 1 } }),
      trial(5, "RUNNING", null),
    ],
    params: [
      { name: "extra", kind: "float", log: false },
      { name: "lr", kind: "float", log: true },
      { name: "opt", kind: "categorical", log: false, choices: ["adam", "sgd", "</script><b>"] },
      { name: "x", kind: "float", log: false },
    ],
    importances: {
      method: "fANOVA (test)",
      trials: 3,
      values: [{ name: "x", importance: 0.7 }, { name: "opt", importance: 0.2 }, {
        name: "lr",
        importance: 0.1,
      }],
    },
    generated: "2026-01-01T00:00:00Z",
  };
}

Deno.test("study charts: history with the best value so far, in either direction", () => {
  const h = historyOption(study()) as Any;
  assert.deepStrictEqual(h.series[0].data.map((d: Any) => d.value), [[0, 0.5], [1, 0.3], [4, 0.4]]);
  assert.deepStrictEqual(h.series[1].data, [[0, 0.5], [1, 0.3], [4, 0.3]]);
  const up = historyOption(study("maximize")) as Any;
  assert.deepStrictEqual(up.series[1].data, [[0, 0.5], [1, 0.5], [4, 0.5]]);
});

Deno.test("study charts: importances, parallel axes and marked pruned and failed trials", () => {
  const data = study();
  const imp = importanceOption(data) as Any;
  assert.deepStrictEqual(imp.yAxis.data, ["lr", "opt", "x"], "largest on top");
  assert.deepStrictEqual(imp.series[0].data, [0.1, 0.2, 0.7]);
  assert.match(imp.title.subtext, /fANOVA \(test\), fitted on 3 complete trials/);

  const par = parallelOption(data) as Any;
  assert.deepStrictEqual(par.parallelAxis.map((a: Any) => [a.name, a.type]), [
    ["objective", "value"],
    ["lr", "log"],
    ["opt", "category"],
    ["x", "value"],
  ]);
  assert.match(par.title.subtext, /no axis for extra/);
  assert.deepStrictEqual(par.series[0].data.map((d: Any) => d.name), [
    "trial 0",
    "trial 1",
    "trial 4",
  ]);

  const inter = intermediateOption(data) as Any;
  const byName = (n: string) => inter.series.filter((s: Any) => s.name === n);
  assert.strictEqual(byName("complete").length, 2);
  assert.strictEqual(byName("pruned")[0].lineStyle.type, "dashed");
  assert.deepStrictEqual(byName("pruned here")[0].data[0], { value: [0, 1.5], name: "trial 2" });
  assert.deepStrictEqual(byName("failed here")[0].data[0], { value: [1, 0.7], name: "trial 3" });
});

Deno.test("study charts: every chart renders to SVG here too, with or without trials", () => {
  const empty = { ...study(), trials: [], importances: { error: "no complete trials" } };
  for (const data of [study(), study("maximize"), empty]) {
    for (const [id, option] of Object.entries(studyCharts(data))) {
      const src = renderSvg(option, { width: 800, height: 400 });
      assert.doesNotMatch(src, /NaN|undefined/, id);
      const labels = texts(parseXml(src));
      assert.ok(labels.length > 1, `${id}: ${labels}`);
    }
  }
  const labels = texts(parseXml(renderSvg(importanceOption(empty), { width: 800, height: 400 })));
  assert.ok(labels.includes("no complete trials"), labels.join("|"));
});

Deno.test("study report page: charts as JSON, a row per trial, nothing unescaped", () => {
  const data = study();
  const html = studyReportHtml(data, { echarts: "window.echarts = {};" });
  assert.strictEqual(html.match(/data-chart="/g)?.length, 4);
  const json = /<script type="application\/json" id="report-charts">(.*?)<\/script>/s.exec(html);
  assert.deepStrictEqual(JSON.parse(json![1]!), JSON.parse(JSON.stringify(studyCharts(data))));
  assert.ok(!html.includes("</script><b>"), "a choice cannot close the script or add markup");
  assert.strictEqual(html.match(/<tr class="state-/g)?.length, 6);
  assert.match(html, /<tr class="state-complete best"><td>1 ★<\/td>/);
  assert.match(html, /<a href="s\/trial-0">folder<\/a>/);
  assert.match(html, /Importances: fANOVA \(test\), fitted on 3 complete trials/);
});
