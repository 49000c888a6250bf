/**
 * The robustness chart: accuracy against ε for FGSM and PGD (and, for a transfer, the accuracy
 * of the model the examples were crafted on), drawn by the function that draws a run's curves,
 * so the two charts of a run look alike and change together.
 *
 * @module
 */

import { curvesSvg, type Series } from "../io/plot.ts";
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
}

/** The chart as an SVG document. */
export function robustnessSvg(c: RobustnessChart): string {
  const curve = (
    name: string,
    points: readonly AttackPoint[],
    key: "accuracy" | "source_accuracy",
  ) =>
    ({
      name,
      axis: "left",
      points: points.filter((p) => p[key] !== undefined).map((p) => [p.eps, p[key]!]),
    }) as Series;
  const on = c.source ? " (transfer)" : "";
  const series: Series[] = [
    curve(`FGSM${on}`, c.fgsm, "accuracy"),
    curve(`PGD-${c.pgdSteps}${on}`, c.pgd, "accuracy"),
  ];
  if (c.source) {
    series.push(
      curve(`FGSM on ${c.source}`, c.fgsm, "source_accuracy"),
      curve(`PGD-${c.pgdSteps} on ${c.source}`, c.pgd, "source_accuracy"),
    );
  }
  return curvesSvg(series.filter((s) => s.points.length > 0), {
    title: `${c.title}: accuracy under L∞ attacks${c.source ? ` crafted on ${c.source}` : ""}`,
    xLabel: "ε (pixel scale [0, 1])",
    leftLabel: "test accuracy",
    rightLabel: "",
  });
}
