/**
 * Evaluating a trained run end to end: its model planned in evaluation mode with its checkpoint's
 * weights (and, for a transfer, the model the attacks are crafted on), the test split resident on
 * the GPU, one {@link makeEvalSuite} pass over it, then the metrics computed from what it read back
 * (per-class and macro F1, AUROC, bits per token), the size (parameters, FLOPs per sample) and the
 * inference speed. Everything is made in one GPU scope, freed on every path out.
 *
 * @module
 */

import type { Gpu, Storage } from "../gpu/device.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import { forwardFlops } from "../graph/flops.ts";
import { hostSplit, uploadSplit } from "../train/data.ts";
import type { Config, DatasetSplits, Registry } from "../train/registry.ts";
import { auroc, bitsPerToken, type ClassMetrics, classMetrics, macroF1 } from "./metrics.ts";
import { loadNet, type Weights } from "./model.ts";
import { measureSpeed, type SpeedResult } from "./speed.ts";
import { type AttackPoint, type AttackSettings, makeEvalSuite } from "./suite.ts";
import { type TtaKind, ttaViews } from "./views.ts";

/** The study's FGSM grid: 0 to 0.25 in steps of 0.0125 (21 values; algorithms.md §10). */
export const FGSM_GRID: readonly number[] = Array.from(
  { length: 21 },
  (_, k) => Number((k * 0.0125).toFixed(4)),
);

/** The study's PGD grid: k·0.025/12 for k = 0..11. */
export const PGD_GRID: readonly number[] = Array.from({ length: 12 }, (_, k) => (k * 0.025) / 12);

/** A run's model: its resolved config and checkpoint weights. */
export interface RunModel {
  config: Config;
  weights: Weights;
  /** For messages and the chart's legend (the run folder). */
  name: string;
}

/** What {@link evaluateRun} evaluates and how. */
export interface EvaluateOptions {
  gpu: Gpu;
  kernels: KernelCache;
  registry: Registry;
  /** The run evaluated. */
  target: RunModel;
  /** Transfer: the run the attacks are crafted on (same dataset). */
  source?: RunModel;
  dataset: DatasetSplits;
  /** Rows per evaluation batch. */
  batch: number;
  precision: Storage;
  /** FGSM/PGD; absent: none. */
  attacks?: AttackSettings;
  /** Test-time augmentation kinds (none: no TTA) and the crop's shift in pixels. */
  tta: readonly TtaKind[];
  ttaShift: number;
  /** Evaluate the first `samples` test rows only (0 or absent: all). */
  samples?: number;
  /** Measure speed with a large batch of this many rows; absent: no speed measurement. */
  speedBatch?: number;
  onBatch?: (done: number, total: number) => void;
}

/** Everything an evaluation reports (the `--json` object's fields). */
export interface EvalReport {
  samples: number;
  precision: Storage;
  test_accuracy: number;
  test_loss: number;
  /** `test_loss` in bits, when the labels are a text's tokens. */
  bits_per_token?: number;
  fgsm: AttackPoint[];
  pgd: AttackPoint[];
  pgd_steps: number;
  /** Test-time augmentation beside the plain accuracy. */
  tta?: { kinds: TtaKind[]; views: number; accuracy: number; clean_accuracy: number };
  /** [label][prediction]. */
  confusion?: number[][];
  per_class?: ClassMetrics[];
  macro_f1?: number;
  /** Two classes only; null when the split lacks one of them. */
  auroc?: number | null;
  params: number;
  flops_per_sample: number;
  speed?: SpeedResult;
  /** Transfer: the run the attacks were crafted on. */
  adversarial_from?: string;
}

/** Checks that two runs were trained on the same data (transfer). */
function checkSameData(target: RunModel, source: RunModel): void {
  for (const key of ["dataset", "data"]) {
    if (JSON.stringify(target.config[key]) !== JSON.stringify(source.config[key])) {
      throw new RangeError(
        `--adversarial-from ${source.name}: its ${key} is ${
          JSON.stringify(source.config[key])
        }, the evaluated run's is ${
          JSON.stringify(target.config[key])
        }; transfer needs both runs trained on the same dataset`,
      );
    }
  }
}

/** Runs the evaluation; the GPU scope it opens is disposed before it returns or throws. */
export async function evaluateRun(o: EvaluateOptions): Promise<EvalReport> {
  const { registry, dataset, batch, precision } = o;
  const info = dataset.info;
  if (o.source) checkSameData(o.target, o.source);
  const attacks = o.attacks;
  const crafts = attacks !== undefined && attacks.fgsm.length + attacks.pgd.length > 0;
  if ((crafts || o.tta.length > 0) && !info.image) {
    throw new RangeError(
      `${
        crafts ? "FGSM/PGD" : "--tta"
      } need an image dataset (pixels in [0, 1]); "${o.target.config.dataset}" has no image shape: use --fgsm-eps none --pgd-eps none --tta none`,
    );
  }
  const gpu = o.gpu.scope("evaluation");
  const kernels = o.kernels.withGpu(gpu);
  try {
    const net = (m: RunModel, rows: number, inputGrad: boolean) =>
      loadNet({
        gpu,
        kernels,
        registry,
        config: m.config,
        info,
        batch: rows,
        precision,
        inputGrad,
        weights: m.weights,
      });
    const target = await net(o.target, batch, crafts && !o.source);
    const source = o.source ? await net(o.source, batch, crafts) : undefined;
    const count = o.samples && o.samples > 0
      ? Math.min(o.samples, dataset.test.count)
      : dataset.test.count;
    const split = uploadSplit(gpu, "test", hostSplit(dataset.test, info.features, count));
    const classes = info.classes;
    const binary = classes === 2;
    const suite = await makeEvalSuite({
      gpu,
      kernels,
      target,
      source,
      dataset,
      split,
      count,
      attacks,
      views: o.tta.length > 0 ? ttaViews(o.tta, o.ttaShift) : undefined,
      scores: binary,
    });
    const r = await suite(o.onBatch);
    const report: EvalReport = {
      samples: count,
      precision,
      test_accuracy: r.clean.accuracy,
      test_loss: r.clean.loss,
      ...(info.tokens ? { bits_per_token: bitsPerToken(r.clean.loss) } : {}),
      fgsm: r.fgsm,
      pgd: r.pgd,
      pgd_steps: attacks?.pgdSteps ?? 0,
      params: target.graph.params.reduce((s, p) => s + p.size, 0),
      flops_per_sample: forwardFlops(target.graph, registry.ops) / batch,
      ...(o.source ? { adversarial_from: o.source.name } : {}),
    };
    if (r.tta) {
      report.tta = {
        kinds: [...o.tta],
        views: r.tta.views,
        accuracy: r.tta.accuracy,
        clean_accuracy: r.clean.accuracy,
      };
    }
    if (r.confusion) {
      report.confusion = r.confusion;
      report.per_class = classMetrics(r.confusion);
      report.macro_f1 = macroF1(r.confusion);
    }
    if (r.scores) {
      const labels = Array.from({ length: count }, (_, i) => dataset.test.labels[i]!);
      report.auroc = auroc(r.scores, labels);
    }
    if (o.speedBatch) {
      const single = await net(o.target, 1, false);
      const large = await net(o.target, o.speedBatch, false);
      report.speed = await measureSpeed(gpu, single.plan, {
        plan: large.plan,
        batch: o.speedBatch,
      });
    }
    return report;
  } finally {
    gpu.dispose();
  }
}
