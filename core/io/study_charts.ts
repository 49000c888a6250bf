/**
 * The charts of a study report, as ECharts options over plain data (so this layer needs nothing
 * from the search): the optimization history with the best value so far, the parameter
 * importances, a parallel-coordinate plot and every trial's intermediate values — the four plots
 * Optuna users know from `optuna.visualization`.
 *
 * @module
 */

import { type ChartOption, PALETTE } from "./charts.ts";

/** A trial's state by Optuna's name. */
export type TrialStateName = "RUNNING" | "COMPLETE" | "PRUNED" | "FAIL" | "WAITING";

/** One trial, as the report shows it. */
export interface ReportTrial {
  number: number;
  state: TrialStateName;
  /** The objective value (the first, for several); null unless complete. */
  value: number | null;
  params: Record<string, string | number | boolean | null>;
  /** `[step, value]` in step order. */
  intermediate: [number, number][];
  datetimeStart: string | null;
  datetimeComplete: string | null;
  /** Seconds from start to end, when both are known. */
  seconds: number | null;
  /** Links (relative to the report) to the trial's run folder and its curves, when found. */
  runFolder?: string;
  curves?: string;
}

/** A parameter's axis. */
export interface ReportParam {
  name: string;
  kind: "float" | "int" | "categorical";
  log: boolean;
  choices?: string[];
}

/** What the report says about the importances: the values, or why there are none. */
export type ReportImportances =
  | { method: string; trials: number; values: { name: string; importance: number }[] }
  | { error: string };

/** Everything the report draws. */
export interface StudyReportData {
  study: string;
  journal: string;
  direction: "minimize" | "maximize";
  /** The number of objectives (the charts show the first). */
  objectives: number;
  trials: ReportTrial[];
  params: ReportParam[];
  importances: ReportImportances;
  /** When the report was written (ISO). */
  generated: string;
}

const BASE = {
  backgroundColor: "#ffffff",
  textStyle: { fontFamily: "sans-serif" },
  animation: false,
};

const STATE_STYLE: Record<TrialStateName, { color: string; line: string; label: string }> = {
  COMPLETE: { color: PALETTE[0], line: "solid", label: "complete" },
  PRUNED: { color: PALETTE[1], line: "dashed", label: "pruned" },
  FAIL: { color: PALETTE[6], line: "dotted", label: "failed" },
  RUNNING: { color: PALETTE[2], line: "solid", label: "running" },
  WAITING: { color: PALETTE[5], line: "solid", label: "waiting" },
};

/** The best trial (first among equals), or undefined without complete trials. */
export function bestTrial(data: StudyReportData): ReportTrial | undefined {
  let best: ReportTrial | undefined;
  for (const t of data.trials) {
    if (t.state !== "COMPLETE" || t.value === null || !Number.isFinite(t.value)) continue;
    const v = t.value;
    if (!best || (data.direction === "minimize" ? v < best.value! : v > best.value!)) best = t;
  }
  return best;
}

function emptyTitle(text: string, why: string): ChartOption {
  return { ...BASE, title: { text, subtext: why, left: "center", top: "middle" } };
}

/** Objective value per complete trial, and the best value so far (Optuna's history plot). */
export function historyOption(data: StudyReportData): ChartOption {
  const done = data.trials.filter((t) =>
    t.state === "COMPLETE" && t.value !== null && Number.isFinite(t.value)
  );
  if (done.length === 0) return emptyTitle("Optimization history", "no complete trial yet");
  const best: [number, number][] = [];
  let so = NaN;
  for (const t of done) {
    const v = t.value!;
    if (Number.isNaN(so) || (data.direction === "minimize" ? v < so : v > so)) so = v;
    best.push([t.number, so]);
  }
  return {
    ...BASE,
    title: { text: "Optimization history", subtext: `${data.direction} the objective`, left: 10 },
    legend: { top: 10, right: 20, itemGap: 16 },
    tooltip: { trigger: "item" },
    grid: { left: 70, right: 30, top: 95, bottom: 50 },
    xAxis: { type: "value", name: "trial", nameLocation: "middle", nameGap: 28, minInterval: 1 },
    yAxis: { type: "value", name: "objective value", scale: true },
    series: [
      {
        type: "scatter",
        name: "objective value",
        color: PALETTE[0],
        symbolSize: 9,
        data: done.map((t) => ({ value: [t.number, t.value], name: `trial ${t.number}` })),
      },
      {
        type: "line",
        name: "best value",
        color: PALETTE[1],
        step: "end",
        showSymbol: false,
        data: best,
      },
    ],
  };
}

/** Importances as horizontal bars, largest on top, the method in the subtitle. */
export function importanceOption(data: StudyReportData): ChartOption {
  const imp = data.importances;
  if ("error" in imp) return emptyTitle("Hyperparameter importances", imp.error);
  if (imp.values.length === 0) {
    return emptyTitle("Hyperparameter importances", "no parameter varies across the trials");
  }
  const rows = [...imp.values].reverse();
  return {
    ...BASE,
    title: {
      text: "Hyperparameter importances",
      subtext: `${imp.method}, fitted on ${imp.trials} complete trials`,
      left: 10,
    },
    tooltip: { trigger: "item" },
    grid: { left: 130, right: 70, top: 80, bottom: 40 },
    xAxis: { type: "value", name: "importance", min: 0, max: 1 },
    yAxis: { type: "category", data: rows.map((r) => r.name) },
    series: [{
      type: "bar",
      name: "importance",
      color: PALETTE[0],
      data: rows.map((r) => Number(r.importance.toFixed(4))),
      label: { show: true, position: "right" },
    }],
  };
}

/**
 * One line per complete trial through the objective and every parameter's axis. A conditional
 * parameter (one some complete trials lack) gets no axis, so that every trial keeps its line.
 */
export function parallelOption(data: StudyReportData): ChartOption {
  const done = data.trials.filter((t) =>
    t.state === "COMPLETE" && t.value !== null && Number.isFinite(t.value)
  );
  if (done.length === 0) return emptyTitle("Parallel coordinates", "no complete trial yet");
  const shared = data.params.filter((p) => done.every((t) => p.name in t.params));
  const left = data.params.filter((p) => !shared.includes(p)).map((p) => p.name);
  const values = done.map((t) => t.value!);
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  const axes = [
    { dim: 0, name: "objective", type: "value", scale: true },
    ...shared.map((p, i) =>
      p.kind === "categorical"
        ? { dim: i + 1, name: p.name, type: "category", data: p.choices }
        : { dim: i + 1, name: p.name, type: p.log ? "log" : "value", scale: true }
    ),
  ];
  // The better end of the colour scale is the same colour whatever the direction.
  const colors = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
  const note = left.length > 0 ? `; no axis for ${left.join(", ")} (not in every trial)` : "";
  return {
    ...BASE,
    title: {
      text: "Parallel coordinates",
      subtext: `${done.length} complete trials${note}`,
      left: 10,
    },
    tooltip: { trigger: "item" },
    parallel: { left: 60, right: 110, top: 100, bottom: 40 },
    parallelAxis: axes.map((a) => ({ ...a, nameTextStyle: { fontSize: 12 } })),
    visualMap: {
      type: "continuous",
      dimension: 0,
      min: lo,
      max: hi === lo ? lo + 1 : hi,
      right: 10,
      top: "middle",
      text: ["objective", ""],
      inRange: { color: data.direction === "maximize" ? colors : [...colors].reverse() },
    },
    series: [{
      type: "parallel",
      name: "trials",
      lineStyle: { width: 2, opacity: 0.8 },
      data: done.map((t) => ({
        name: `trial ${t.number}`,
        value: [t.value, ...shared.map((p) => paramAxisValue(t.params[p.name], p))],
      })),
    }],
  };
}

function paramAxisValue(
  v: ReportTrial["params"][string] | undefined,
  p: ReportParam,
): number | string {
  return p.kind === "categorical" ? String(v) : Number(v);
}

/** Each trial's intermediate values; pruned and failed trials drawn apart and marked at the end. */
export function intermediateOption(data: StudyReportData): ChartOption {
  const reported = data.trials.filter((t) => t.intermediate.length > 0);
  if (reported.length === 0) {
    return emptyTitle("Intermediate values", "no trial reported an intermediate value");
  }
  const lines = reported.map((t) => {
    const s = STATE_STYLE[t.state];
    return {
      type: "line",
      // Series of one state share a name, so the legend shows and toggles states.
      name: s.label,
      color: s.color,
      showSymbol: t.intermediate.length === 1,
      lineStyle: { type: s.line, width: 1.5, opacity: 0.85 },
      data: t.intermediate.map((p) => ({ value: p, name: `trial ${t.number}` })),
    };
  });
  const ends = (state: TrialStateName, label: string, symbol: string) => {
    const list = reported.filter((t) => t.state === state);
    return list.length === 0 ? [] : [{
      type: "scatter",
      name: label,
      color: STATE_STYLE[state].color,
      symbol,
      symbolSize: 12,
      z: 5,
      data: list.map((t) => ({ value: t.intermediate.at(-1)!, name: `trial ${t.number}` })),
    }];
  };
  return {
    ...BASE,
    title: { text: "Intermediate values", subtext: "reported each epoch", left: 10 },
    legend: { top: 10, right: 20, itemGap: 16 },
    tooltip: { trigger: "item" },
    grid: { left: 70, right: 30, top: 95, bottom: 50 },
    xAxis: { type: "value", name: "step", nameLocation: "middle", nameGap: 28, minInterval: 1 },
    yAxis: { type: "value", name: "intermediate value", scale: true },
    series: [
      ...lines,
      ...ends("PRUNED", "pruned here", "triangle"),
      ...ends("FAIL", "failed here", "rect"),
    ],
  };
}

/** Every chart of the report by its id in the page. */
export function studyCharts(data: StudyReportData): Record<string, ChartOption> {
  return {
    history: historyOption(data),
    importance: importanceOption(data),
    parallel: parallelOption(data),
    intermediate: intermediateOption(data),
  };
}
