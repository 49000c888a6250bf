/**
 * Parameter noise for an optimizer (algorithms.md §4.2): after the update, θ ← θ + σ_t·ξ with
 * ξ ~ N(0, I) fresh per element and step from Philox keyed by (the run's seed, {@link
 * NOISE_STREAM}, the optimizer step), so a run is reproducible and a resumed run continues the
 * same stream. σ_t is a fraction `noise` of the step's lr — of each tensor's own lr, multiplier
 * included — until t_ref, then decays as 1/√(t/t_ref) on top of the lr, so under the `edm2`
 * schedule it decays as 1/t and the total injected variance stays finite. Computed once on the
 * CPU in float64 into a per-step table the kernel reads at the step counter.
 *
 * @module
 */

import type { Dispatch } from "../../core/gpu/kernels.ts";
import { normalAdd } from "../../core/ops/normal.ts";
import { segmentTable } from "../../core/ops/optimizer.ts";
import { OPTIMIZER_STEP } from "../../core/gpu/counters.ts";
import type { Config, OptimizerContext, OptimizerTensor } from "../../core/train/registry.ts";
import { edm2Steps } from "../schedules/schedules.ts";

/** The Philox stream of parameter noise (dropout's streams are graph node ids + 1, far below). */
export const NOISE_STREAM = 0x6e6f6973;

/** Which tensors get noise: weight matrices (rank ≥ 2) by default, or every trainable tensor. */
export const NOISE_TARGETS = ["matrices", "all"] as const;

/** σ of every step s = 0, 1, …: `noise` · lr_s / √max(s / ref, 1) (float64, stored as f32). */
export function noiseStds(lrs: ArrayLike<number>, noise: number, ref: number): Float32Array {
  return Float32Array.from(
    { length: Math.max(1, lrs.length) },
    (_, s) => noise * (lrs[s] ?? 0) / Math.sqrt(Math.max(s / ref, 1)),
  );
}

/** The tensors that get noise under `targets`. */
export function noiseTensors(
  tensors: readonly OptimizerTensor[],
  targets: string,
): OptimizerTensor[] {
  if (!(NOISE_TARGETS as readonly string[]).includes(targets)) {
    throw new RangeError(
      `noise_params must be one of ${
        NOISE_TARGETS.map((t) => `"${t}"`).join(", ")
      }, got "${targets}"`,
    );
  }
  return tensors.filter((t) => targets === "all" || t.shape.length >= 2);
}

/** t_ref of the noise: `noise_ref_steps`, or when 0 the `edm2` schedule's t_ref for this run. */
export function noiseRefSteps(config: Config, totalSteps: number): number {
  const given = Number(config.noise_ref_steps ?? 0);
  return given > 0 ? given : edm2Steps(config, totalSteps).ref;
}

/**
 * The dispatch adding this step's noise to the parameters (keys `noise`, `noise_ref_steps`,
 * `noise_params`), to encode after the update and before the step counter advances; none when
 * `noise` is 0 or no tensor is a target.
 */
export async function parameterNoise(ctx: OptimizerContext, config: Config): Promise<Dispatch[]> {
  const noise = Number(config.noise ?? 0);
  if (!(noise >= 0 && Number.isFinite(noise))) {
    throw new RangeError(`noise must be a number ≥ 0, got ${JSON.stringify(config.noise)}`);
  }
  const targets = noiseTensors(ctx.tensors, String(config.noise_params ?? "matrices"));
  if (noise === 0 || targets.length === 0) return [];
  const gpu = ctx.kernels.gpu;
  const stds = noiseStds(ctx.lrs, noise, noiseRefSteps(config, ctx.lrs.length));
  return [
    await normalAdd(ctx.kernels, {
      out: ctx.params,
      n: ctx.n,
      seed: ctx.seed >>> 0,
      stream: NOISE_STREAM,
      counters: ctx.counters,
      counterIndex: OPTIMIZER_STEP,
      scale: gpu.storage("parameter noise σ per step", stds),
      segments: segmentTable(gpu, targets),
      segmentCount: targets.length,
      label: "parameter noise",
    }),
  ];
}
