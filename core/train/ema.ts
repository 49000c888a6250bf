/**
 * Power-function EMAs of the weights (EDM2, Karras et al. 2024; algorithms.md §4.1), one per
 * relative width σ_rel of `ema` (e.g. "0.05,0.10"): after optimizer step t,
 * θ̂ ← β_t·θ̂ + (1 − β_t)·θ with β_t = (1 − 1/t)^{γ+1}, which makes θ̂ exactly the average of the
 * weights after steps 1..t with weights (τ^{γ+1} − (τ−1)^{γ+1}) / t^{γ+1} ∝ τ^γ. γ is the largest
 * root of γ³ + 7γ² + (16 − σ⁻²)γ + (12 − σ⁻²) = 0. The β of every step is a table computed once
 * in float64; each EMA is one dispatch at the end of the training step (after the step counter
 * advanced), so it costs no readback. Evaluation swaps an EMA into the parameter buffer by GPU
 * copies and back, bit for bit. The averages are checkpointed as `ema<σ>.<param>`.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import { OPTIMIZER_STEP } from "../gpu/counters.ts";
import { emaUpdate } from "../ops/ema.ts";
import { dispatchPhase, type Phase } from "./step.ts";

/** The largest σ_rel a power-function EMA with γ ≥ 0 has: √(1/12), at γ = 0 (a uniform average). */
export const MAX_SIGMA_REL = Math.sqrt(1 / 12);

/** σ_rel of the power-function EMA of exponent γ: √((γ+1) / ((γ+2)²(γ+3))). */
export function sigmaRelOf(gamma: number): number {
  return Math.sqrt((gamma + 1) / ((gamma + 2) ** 2 * (gamma + 3)));
}

/** γ of a relative width σ_rel in (0, √(1/12)): σ_rel is decreasing in γ ≥ 0, so bisection. */
export function gammaOf(sigmaRel: number): number {
  if (!(sigmaRel > 0 && sigmaRel < MAX_SIGMA_REL)) {
    throw new RangeError(`σ_rel ${sigmaRel} must be in (0, ${MAX_SIGMA_REL.toFixed(4)})`);
  }
  let lo = 0;
  let hi = 1;
  while (sigmaRelOf(hi) > sigmaRel) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (sigmaRelOf(mid) > sigmaRel) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * 1 − β_t for t = 0 … steps, β_t = (1 − 1/t)^{γ+1}, in float64 as −expm1((γ+1)·log1p(−1/t)),
 * which keeps its digits when β is near 1 (entry 0 is never read: 1).
 */
export function emaTable(gamma: number, steps: number): Float32Array {
  return Float32Array.from(
    { length: steps + 1 },
    (_, t) => t <= 1 ? 1 : -Math.expm1((gamma + 1) * Math.log1p(-1 / t)),
  );
}

/** The name evaluation and checkpoints give an EMA: `ema0.05`. */
export function emaName(sigmaRel: number): string {
  return `ema${sigmaRel}`;
}

/** Reads `ema` ("0.05,0.10", or "" for none) into distinct σ_rel values, naming --ema on errors. */
export function parseEma(value: unknown): number[] {
  const text = String(value ?? "").trim();
  if (text === "") return [];
  const sigmas = text.split(",").map((part) => {
    const v = Number(part.trim());
    if (!(part.trim() !== "" && v > 0 && v < MAX_SIGMA_REL)) {
      throw new RangeError(
        `--ema takes σ_rel values in (0, ${
          MAX_SIGMA_REL.toFixed(4)
        }) separated by commas, like "0.05,0.10"; got "${part.trim()}" in "${text}"`,
      );
    }
    return v;
  });
  if (new Set(sigmas).size !== sigmas.length) {
    throw new RangeError(`--ema lists a σ_rel twice: "${text}"`);
  }
  return sigmas;
}

/**
 * Which weights evaluation reports as the run's (`eval_weights`): "plain", or an EMA of `sigmas`
 * by name ("ema0.05"; "ema0.10" names σ_rel 0.1 too). Returns the EMA's name or "plain".
 */
export function evalWeightsOf(value: unknown, sigmas: readonly number[]): string {
  const text = String(value ?? "plain").trim();
  if (text === "plain") return text;
  const sigma = text.startsWith("ema") ? Number(text.slice(3)) : NaN;
  if (text.length > 3 && sigmas.includes(sigma)) return emaName(sigma);
  const known = ["plain", ...sigmas.map(emaName)].map((n) => `"${n}"`).join(", ");
  throw new RangeError(
    `--eval-weights "${text}" names no weights of this run: known are ${known}${
      sigmas.length === 0 ? " (add EMAs with --ema 0.05,0.10)" : ""
    }`,
  );
}

/** A run's EMAs: their names, buffers, the step's update phase and the swap for evaluation. */
export interface RunEma {
  /** `ema<σ>` of each, in `ema` order. */
  names: string[];
  /** σ_rel of each. */
  sigmas: number[];
  /** One f32 buffer of `n` values per EMA (the trainable prefix of the parameters). */
  buffers: GPUBuffer[];
  /** Values in each: the trainable prefix of the flat parameters. */
  n: number;
  /** The update of every EMA, to run after the step counter advanced. */
  update: Phase;
  /** Runs `fn` with EMA `k` in the parameter buffer, then puts the weights back exactly. */
  withWeights<T>(k: number, fn: () => Promise<T>): Promise<T>;
}

/** The EMAs of `sigmas` over the first `n` parameters (none: undefined). */
export async function buildEma(options: {
  gpu: Gpu;
  kernels: KernelCache;
  sigmas: readonly number[];
  params: GPUBuffer;
  n: number;
  counters: GPUBuffer;
  totalSteps: number;
}): Promise<RunEma | undefined> {
  const { gpu, kernels, sigmas, params, n, counters, totalSteps } = options;
  if (sigmas.length === 0) return undefined;
  const names = sigmas.map(emaName);
  const buffers = names.map((name) => gpu.storage(`${name} weights`, n * 4));
  const dispatches = await Promise.all(sigmas.map((sigma, k) =>
    emaUpdate(kernels, {
      weights: params,
      ema: buffers[k]!,
      n,
      counters,
      counterIndex: OPTIMIZER_STEP,
      table: gpu.storage(`${names[k]} β table`, emaTable(gammaOf(sigma), totalSteps)),
      label: `${names[k]} update`,
    })
  ));
  const backup = gpu.storage("weights while an EMA is evaluated", n * 4);
  const copy = (from: GPUBuffer, to: GPUBuffer) => {
    const encoder = gpu.device.createCommandEncoder({ label: `copy ${from.label} → ${to.label}` });
    encoder.copyBufferToBuffer(from, 0, to, 0, n * 4);
    gpu.submit([encoder.finish()]);
  };
  return {
    names,
    sigmas: [...sigmas],
    buffers,
    n,
    update: dispatchPhase("power-function EMAs", dispatches),
    async withWeights<T>(k: number, fn: () => Promise<T>): Promise<T> {
      // Queue order: the copies and the evaluation's submissions run in the order submitted.
      copy(params, backup);
      copy(buffers[k]!, params);
      try {
        return await fn();
      } finally {
        copy(backup, params);
      }
    },
  };
}
