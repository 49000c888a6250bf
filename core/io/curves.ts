/**
 * A run's training curves (`curves.svg`): loss in the upper panel and accuracy in the lower one,
 * both against the optimizer step, drawn by ECharts ({@link renderSvg}). The loss axis is
 * logarithmic when the loss spans a decade or more, which is when a linear axis flattens
 * everything after the first few hundred steps into the floor.
 *
 * @module
 */

import { type ChartOption, PALETTE, renderSvg } from "./charts.ts";

/** One curve: `[step, value]` points (non-finite ones are skipped) in one panel. */
export interface CurveSeries {
  /** The legend's label. */
  name: string;
  /** `[step, value]`. */
  points: [number, number][];
  /** The upper (loss) or lower (accuracy) panel. */
  panel: "loss" | "accuracy";
  /** A marker at every point: for per-epoch values, which are few. */
  markers?: boolean;
  /** Colour index into {@link PALETTE}; by default the series' position. */
  color?: number;
  /** Dashed, to tell apart two series of one colour. */
  dashed?: boolean;
}

/** Title and size (pixels; default 900×640) of the chart. */
export interface CurvesOptions {
  /** Above the chart. */
  title: string;
  /** The x axis' name; default "optimizer step". */
  xLabel?: string;
  /** Pixels; default 900. */
  width?: number;
  /** Pixels; default 640. */
  height?: number;
}

/** Whether a log axis shows `values` better: all positive and spanning at least a decade. */
export function logScaleHelps(values: readonly number[]): boolean {
  if (values.length < 2 || values.some((v) => !(v > 0))) return false;
  return Math.max(...values) / Math.min(...values) >= 10;
}

/** The ECharts option of the curves: what {@link curvesSvg} renders, or a page could draw. */
export function curvesOption(series: readonly CurveSeries[], opts: CurvesOptions): ChartOption {
  const finite = series.map((s) => ({
    ...s,
    points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)),
  }));
  const lossValues = finite.filter((s) => s.panel === "loss").flatMap((s) =>
    s.points.map((p) => p[1])
  );
  // A loss that reaches 0 or below (an mse fitted exactly) keeps a linear axis: a log one could
  // not place those points.
  const logLoss = logScaleHelps(lossValues);

  const empty = finite.every((s) => s.points.length === 0);
  const panel = (p: CurveSeries["panel"]) => (p === "loss" ? 0 : 1);
  const name = (s: CurveSeries) => (s.points.length === 0 ? `${s.name} (no data)` : s.name);
  const lossRange = logLoss
    ? { min: round3(Math.min(...lossValues) / 1.25), max: round3(Math.max(...lossValues) * 1.25) }
    : {};
  return {
    backgroundColor: "#ffffff",
    color: [...PALETTE],
    textStyle: { fontFamily: "sans-serif" },
    title: {
      text: opts.title,
      subtext: empty ? "no data yet" : undefined,
      left: "center",
      top: 8,
    },
    legend: { top: 40, itemGap: 24, data: finite.map(name) },
    tooltip: { trigger: "axis" },
    grid: [
      { left: 80, right: 40, top: 90, height: "33%" },
      { left: 80, right: 40, bottom: 60, height: "33%" },
    ],
    xAxis: [0, 1].map((i) => ({
      type: "value",
      gridIndex: i,
      min: 0,
      name: i === 1 ? (opts.xLabel ?? "optimizer step") : "",
      nameLocation: "middle",
      nameGap: 30,
    })),
    yAxis: [
      {
        type: logLoss ? "log" : "value",
        gridIndex: 0,
        name: logLoss ? "loss (log scale)" : "loss",
        scale: !logLoss,
        ...lossRange,
        minorTick: { show: logLoss },
        minorSplitLine: { show: logLoss, lineStyle: { opacity: 0.4 } },
      },
      { type: "value", gridIndex: 1, name: "accuracy", scale: true, max: 1 },
    ],
    series: finite.map((s, i) => ({
      type: "line",
      name: name(s),
      xAxisIndex: panel(s.panel),
      yAxisIndex: panel(s.panel),
      data: s.points,
      // A lone point draws no line: it gets a marker whatever the series asked.
      showSymbol: s.markers === true || s.points.length === 1,
      symbolSize: 7,
      color: PALETTE[(s.color ?? i) % PALETTE.length],
      lineStyle: { width: s.markers ? 2 : 1.5, type: s.dashed ? "dashed" : "solid" },
      z: s.markers ? 3 : 2,
    })),
  };
}

/** Renders the curves as an SVG document (a string starting with `<svg`). */
export function curvesSvg(series: readonly CurveSeries[], opts: CurvesOptions): string {
  return renderSvg(curvesOption(series, opts), {
    width: opts.width ?? 900,
    height: opts.height ?? 640,
  });
}

function round3(v: number): number {
  return Number(v.toPrecision(3));
}
