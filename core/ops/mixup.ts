/**
 * Typed binding of `wgsl/mixup.wgsl`, and the per-micro-step λ table drawn from Beta(α, α).
 *
 * @module
 */

import {
  checkBuffers,
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  type Storage,
  wgsl,
} from "../gpu/kernels.ts";
import src from "../../wgsl/mixup.wgsl" with { type: "text" };

/** `wgsl/mixup.wgsl`. */
export const MIXUP_KERNEL: KernelSource = wgsl("mixup", src);

/** Arguments of {@link mixup}. */
export interface MixupArgs {
  /** The batch [batch, features], mixed in place. */
  x: GPUBuffer;
  labels: GPUBuffer;
  /** Receives the partner rows' labels. */
  labels2: GPUBuffer;
  /** λ per micro-step (see {@link mixupLambdas}). */
  lambdas: GPUBuffer;
  tableLength: number;
  counters: GPUBuffer;
  counterIndex: number;
  /** Receives λ at [0] for the loss kernel. */
  lambdaOut: GPUBuffer;
  batch: number;
  features: number;
  /** x's storage type; default f32 (mixed in f32, rounded once). */
  storage?: Storage;
  label?: string;
}

/** Mixes the batch with its flipped self by the step's λ. */
export function mixup(kernels: KernelCache, args: MixupArgs): Promise<Dispatch> {
  const label = args.label ?? "mixup";
  for (
    const [name, v] of [["batch", args.batch], ["features", args.features], [
      "tableLength",
      args.tableLength,
    ]] as const
  ) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${label}: ${name} must be a positive integer, got ${v}`);
    }
  }
  checkBuffers(label, {
    x: [args.x, args.batch * args.features, args.storage],
    labels: [args.labels, args.batch],
    labels2: [args.labels2, args.batch],
    lambdas: [args.lambdas, args.tableLength],
    counters: [args.counters, args.counterIndex + 1],
    lambdaOut: [args.lambdaOut, 1],
  });
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([["u32", args.batch], ["u32", args.features], ["u32", args.counterIndex], [
      "u32",
      args.tableLength,
    ]]),
  );
  return kernels.dispatch({
    kernel: MIXUP_KERNEL,
    entry: "mixup",
    storage: { X_T: args.storage ?? "f32" },
    bindings: [
      args.x,
      args.labels,
      args.labels2,
      args.lambdas,
      args.counters,
      args.lambdaOut,
      params,
    ],
    workgroups: grid(Math.ceil(args.batch / 2) * args.features, 256),
    label,
  });
}

/** A Gamma(shape, 1) variate (Marsaglia–Tsang; boosted for shape < 1). */
function gamma(shape: number, random: () => number): number {
  if (shape < 1) return gamma(shape + 1, random) * random() ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      const u1 = 1 - random();
      x = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * random());
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - random();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/** `count` draws of λ ~ Beta(α, α), one per micro-step. */
export function mixupLambdas(count: number, alpha: number, random: () => number): Float32Array {
  if (!(alpha > 0)) throw new RangeError(`mixup α must be > 0, got ${alpha}`);
  return Float32Array.from({ length: count }, () => {
    const a = gamma(alpha, random);
    const b = gamma(alpha, random);
    return a / (a + b);
  });
}
