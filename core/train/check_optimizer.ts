/**
 * {@link checkOptimizer} holds an optimizer plugin's GPU steps against a float64 function the
 * user writes, element by element: random weights in three segments (a vector and two matrices,
 * with different lr multipliers and weight decays and padding between them), a fresh random
 * gradient and lr every step, every state slot compared too.
 *
 * @module
 */

import type { KernelCache } from "../gpu/kernels.ts";
import { createCounters } from "../gpu/counters.ts";
import { segmentTable } from "../ops/optimizer.ts";
import { advanceStep } from "../ops/optimizer.ts";
import { submitDispatches } from "../gpu/kernels.ts";
import { seededRandom } from "../util/random.ts";
import type { Config, OptimizerPlugin } from "./registry.ts";

/** One element's values before a step, for the reference. */
export interface ReferenceElement {
  /** The parameter, and the gradient (already scaled). */
  p: number;
  /** The gradient after scaling (and clipping, when on). */
  g: number;
  /** This step's lr (× the segment's multiplier), the 1-based step and the segment's decay. */
  lr: number;
  /** The 1-based step (for bias corrections). */
  t: number;
  /** The segment's weight decay. */
  wd: number;
  /** The hyperparameters (the config's values). */
  hyper: Record<string, number>;
  /** The element's index in the flat buffer (what a Philox stream is keyed by). */
  index: number;
  /** Its tensor's shape: [37], [3, 43] or [7, 10]. */
  shape: readonly number[];
  /** The state slots, by name (zero before the first step). */
  state: Record<string, number>;
}

/** The float64 rule: the new parameter and state of one element (weight decay included). */
export type ReferenceUpdate = (e: ReferenceElement) => { p: number; state: Record<string, number> };

/** What {@link checkOptimizer} measured. */
export interface OptimizerCheck {
  /** Largest |GPU − reference| / (1e-3 + |reference|) over parameters and state. */
  maxError: number;
  /** Steps run. */
  steps: number;
}

/** Options of {@link checkOptimizer}. */
export interface OptimizerCheckOptions {
  /** Steps to run (default 20). */
  steps?: number;
  /** Values of the optimizer's keys (default: its defaults). */
  config?: Config;
  /** Largest allowed error (default 1e-4). */
  tolerance?: number;
  /** Seed of the weights, gradients and lrs, and the context's `seed` (default 7). */
  seed?: number;
}

/**
 * Runs `steps` GPU updates of `plugin` and the reference side by side; throws naming the step,
 * the slot and the element when an error exceeds `tolerance` (default 1e-4: f32 against float64
 * over 20 steps).
 */
export async function checkOptimizer(
  kernels: KernelCache,
  plugin: OptimizerPlugin,
  reference: ReferenceUpdate,
  options: OptimizerCheckOptions = {},
): Promise<OptimizerCheck> {
  const steps = options.steps ?? 20;
  const tolerance = options.tolerance ?? 1e-4;
  const random = seededRandom(options.seed ?? 7);
  const scope = kernels.gpu.scope(`checkOptimizer ${plugin.name}`);
  try {
    const k = kernels.withGpu(scope);
    // Three segments with padding between them (elements outside every segment stay put).
    const segs = [
      { name: "v", shape: [37], start: 0, end: 37, lrMult: 1, weightDecay: 0.1 },
      { name: "a", shape: [3, 43], start: 64, end: 64 + 129, lrMult: 0.5, weightDecay: 0 },
      { name: "b", shape: [7, 10], start: 256, end: 256 + 70, lrMult: 2, weightDecay: 0.01 },
    ];
    const n = 256 + 70;
    const config: Config = { ...plugin.defaults, ...(options.config ?? {}) };
    const hyper = Object.fromEntries(
      Object.keys(plugin.defaults).map((h) => [h, Number(config[h])]),
    );
    const p64 = Float64Array.from({ length: n }, () => 2 * random() - 1);
    const state64 = plugin.slots.map(() => new Float64Array(n));
    const params = scope.storage("params", Float32Array.from(p64));
    const grads = scope.storage("grads", n * 4);
    const state = plugin.slots.map((s) => scope.storage(`state ${s}`, n * 4));
    const counters = createCounters(scope);
    const lrs = Float32Array.from({ length: steps }, () => 1e-3 + 0.05 * random());
    const ctx = {
      kernels: k,
      params,
      grads,
      state,
      segments: segmentTable(scope, segs),
      segmentCount: segs.length,
      n,
      counters,
      lrTable: scope.storage("lr table", lrs),
      lrs,
      tensors: segs,
      seed: options.seed ?? 7,
      gradNorm: scope.storage("grad norm", 16),
      gradScale: 1,
      maxGradNorm: 0,
    };
    const update = [...await plugin.create(ctx, config), await advanceStep(k, { counters })];
    for (let step = 0; step < steps; step++) {
      const g = Float32Array.from({ length: n }, () => 2 * random() - 1);
      scope.write(grads, g);
      submitDispatches(scope, update, `${plugin.name} step ${step + 1}`);
      for (const seg of segs) {
        for (let i = seg.start; i < seg.end; i++) {
          const before: Record<string, number> = {};
          plugin.slots.forEach((s, j) => (before[s] = state64[j]![i]!));
          const r = reference({
            p: p64[i]!,
            g: g[i]!,
            lr: Math.fround(lrs[step]!) * seg.lrMult,
            t: step + 1,
            wd: seg.weightDecay,
            hyper,
            index: i,
            shape: seg.shape,
            state: before,
          });
          p64[i] = r.p;
          plugin.slots.forEach((s, j) => (state64[j]![i] = r.state[s] ?? 0));
        }
      }
    }
    let maxError = 0;
    const compare = async (what: string, buffer: GPUBuffer, ref: Float64Array) => {
      const got = await scope.readF32(buffer, n);
      for (const seg of segs) {
        for (let i = seg.start; i < seg.end; i++) {
          const e = Math.abs(got[i]! - ref[i]!) / (1e-3 + Math.abs(ref[i]!));
          if (!(e <= maxError)) maxError = Number.isNaN(e) ? NaN : e;
          if (!(e <= tolerance)) {
            throw new RangeError(
              `optimizer "${plugin.name}": after ${steps} steps ${what}[${i}] is ${
                got[i]
              } on the GPU, ${ref[i]} in the reference (relative error ${e} > ${tolerance})`,
            );
          }
        }
      }
    };
    await compare("params", params, p64);
    for (const [j, s] of plugin.slots.entries()) {
      await compare(`state "${s}"`, state[j]!, state64[j]!);
    }
    return { maxError, steps };
  } finally {
    scope.dispose();
  }
}
