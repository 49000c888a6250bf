/**
 * Charts through Apache ECharts: one option object describes a chart, and either ECharts'
 * server-side SVG renderer draws it here (a run's `curves.svg`, no browser needed) or the same
 * option is handed to ECharts in a page (the study report, where it adds tooltips). Only the chart
 * types and components the project draws are registered, so the module graph stays small.
 *
 * @module
 */

import * as echarts from "echarts/core";
import { BarChart, LineChart, ParallelChart, ScatterChart } from "echarts/charts";
import {
  GridComponent,
  LegendComponent,
  MarkPointComponent,
  ParallelComponent,
  TitleComponent,
  TooltipComponent,
  VisualMapComponent,
} from "echarts/components";
import { SVGRenderer } from "echarts/renderers";

echarts.use([
  LineChart,
  BarChart,
  ScatterChart,
  ParallelChart,
  GridComponent,
  LegendComponent,
  MarkPointComponent,
  ParallelComponent,
  TitleComponent,
  TooltipComponent,
  VisualMapComponent,
  SVGRenderer,
]);

/** An ECharts option: plain data (no functions), so it can also be written into a page as JSON. */
export type ChartOption = echarts.EChartsCoreOption;

/**
 * Okabe–Ito: a palette that stays distinguishable under the common colour-vision deficiencies.
 * Charts that need more series than colours also vary the line style.
 */
export const PALETTE = [
  "#0072B2",
  "#D55E00",
  "#009E73",
  "#CC79A7",
  "#E69F00",
  "#56B4E9",
  "#000000",
  "#F0E442",
] as const;

/** Size of a rendered chart in pixels. */
export interface ChartSize {
  /** Pixels, at least 100. */
  width: number;
  /** Pixels, at least 100. */
  height: number;
}

/** Renders `option` to a standalone SVG document with ECharts' server-side renderer. */
export function renderSvg(option: ChartOption, size: ChartSize): string {
  for (const [key, value] of Object.entries(size)) {
    if (!Number.isFinite(value) || value < 100) {
      throw new RangeError(`chart ${key} must be a number ≥ 100 pixels, got ${value}`);
    }
  }
  const chart = echarts.init(null, null, {
    renderer: "svg",
    ssr: true,
    width: size.width,
    height: size.height,
  });
  try {
    // A file has no time: animation would only leave the first frame's (empty) state.
    chart.setOption({ animation: false, ...option });
    return `${chart.renderToSVGString()}\n`;
  } finally {
    chart.dispose();
  }
}
