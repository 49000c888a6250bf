/**
 * The robustness chart (`robustness.svg`): test accuracy against ε for FGSM and PGD (and, for a
 * transfer, the accuracy of the model the examples were crafted on, dashed), drawn by ECharts
 * through the renderer and palette that draw a run's curves, so the two charts of a run look
 * alike and change together.
 *
 * @module
 */

import { type ChartOption, PALETTE, renderSvg } from "../io/charts.ts";
import type { AttackPoint } from "./suite.ts";

/** What the chart shows. */
export interface RobustnessChart {
  /** e.g. `bottleneck-mlp on mnist`. */
  title: string;
  fgsm: readonly AttackPoint[];
  pgd: readonly AttackPoint[];
  /** PGD's iterations, for the legend. */
  pgdSteps: number;
  /** Transfer: the run the examples were crafted on, for the legend. */
  source?: string;
  /** The clean accuracy, a horizontal reference line. */
  clean?: number;
}

interface Line {
  name: string;
  points: [number, number][];
  color: number;
  dashed: boolean;
}

/** The ECharts option of the chart (what {@link robustnessSvg} renders). */
export function robustnessOption(c: RobustnessChart): ChartOption {
  const line = (
    name: string,
    points: readonly AttackPoint[],
    key: "accuracy" | "source_accuracy",
    color: number,
  ): Line => ({
    name,
    points: points.filter((p) => p[key] !== undefined).map((p) => [p.eps, p[key]!]),
    color,
    dashed: key === "source_accuracy",
  });
  const on = c.source ? " (transfer)" : "";
  const lines: Line[] = [
    line(`FGSM${on}`, c.fgsm, "accuracy", 0),
    line(`PGD-${c.pgdSteps}${on}`, c.pgd, "accuracy", 1),
  ];
  if (c.source) {
    lines.push(
      line(`FGSM on ${c.source}`, c.fgsm, "source_accuracy", 0),
      line(`PGD-${c.pgdSteps} on ${c.source}`, c.pgd, "source_accuracy", 1),
    );
  }
  const shown = lines.filter((l) => l.points.length > 0);
  const maxEps = Math.max(0, ...shown.flatMap((l) => l.points.map((p) => p[0])));
  if (c.clean !== undefined && maxEps > 0) {
    // A reference line (ECharts' markLine is not among the registered components).
    shown.push({
      name: "clean",
      points: [[0, c.clean], [maxEps, c.clean]],
      color: 6,
      dashed: true,
    });
  }
  return {
    backgroundColor: "#ffffff",
    color: [...PALETTE],
    textStyle: { fontFamily: "sans-serif" },
    title: {
      text: `${c.title}: accuracy under L∞ attacks`,
      subtext: c.source ? `examples crafted on ${c.source}` : undefined,
      left: "center",
      top: 8,
    },
    legend: { top: 52, itemGap: 24, data: shown.map((l) => l.name) },
    tooltip: { trigger: "axis" },
    grid: { left: 80, right: 40, top: 100, bottom: 60 },
    xAxis: {
      type: "value",
      min: 0,
      max: maxEps > 0 ? maxEps : undefined,
      name: "ε (pixel scale [0, 1])",
      nameLocation: "middle",
      nameGap: 30,
    },
    yAxis: { type: "value", min: 0, max: 1, name: "test accuracy" },
    series: shown.map((l) => ({
      type: "line",
      name: l.name,
      data: l.points,
      showSymbol: l.name !== "clean",
      symbolSize: 6,
      color: PALETTE[l.color % PALETTE.length],
      lineStyle: { width: 2, type: l.dashed ? "dashed" : "solid" },
      z: 3,
    })),
  };
}

/** The chart as an SVG document (a string starting with `<svg`), 900×560 pixels. */
export function robustnessSvg(c: RobustnessChart): string {
  return renderSvg(robustnessOption(c), { width: 900, height: 560 });
}
