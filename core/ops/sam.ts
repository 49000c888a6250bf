/**
 * Typed binding of `wgsl/sam.wgsl`: the global norm of SAM's ascent direction, the perturbation
 * w ← w + ε (w kept to restore), and the per-sample g² sums of SSAM's Fisher score — each made
 * once over the flat buffers and encoded every step.
 *
 * @module
 */

import {
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  wgsl,
} from "../gpu/kernels.ts";
import source from "../../wgsl/sam.wgsl" with { type: "text" };

/** `wgsl/sam.wgsl`. */
export const SAM_KERNEL: KernelSource = wgsl("sam", source);

/** Values per chunk of the norm's first stage (must match the WGSL). */
export const SAM_NORM_CHUNK = 256 * 16;

function setupBuffer(kernels: KernelCache, label: string, n: number, rho = 0, eps = 0) {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${label}: n must be ≥ 1, got ${n}`);
  return kernels.gpu.uniform(
    `${label} setup`,
    packUniform([
      ["u32", n],
      ["u32", Math.ceil(n / SAM_NORM_CHUNK)],
      ["f32", rho],
      ["f32", eps],
    ]),
  );
}

/** `out[0] = Σ (t·v)²` over n values, t = |w| when `adaptive` (ASAM), else 1: two dispatches. */
export async function samNormSq(kernels: KernelCache, args: {
  w: GPUBuffer;
  v: GPUBuffer;
  out: GPUBuffer;
  n: number;
  adaptive?: boolean;
  label?: string;
}): Promise<Dispatch[]> {
  const label = args.label ?? "sam norm";
  const setup = setupBuffer(kernels, label, args.n);
  const chunks = Math.ceil(args.n / SAM_NORM_CHUNK);
  const partials = kernels.gpu.storage(`${label} partials`, chunks * 4);
  const constants = { ADAPTIVE: args.adaptive ?? false };
  return await Promise.all([
    kernels.dispatch({
      kernel: SAM_KERNEL,
      entry: "norm_partials",
      constants,
      bindings: [setup, args.w, args.v, partials],
      workgroups: grid(chunks, 1),
      label: `${label}.partials`,
    }),
    kernels.dispatch({
      kernel: SAM_KERNEL,
      entry: "norm_total",
      bindings: [setup, partials, args.out],
      workgroups: 1,
      label: `${label}.total`,
    }),
  ]);
}

/**
 * `backup = w; w += ρ·t²·v/(sqrt(normSq[0]) + eps)·mask`, t = |w| when `adaptive`, mask 1 when
 * none is given: one dispatch.
 */
export function samPerturb(kernels: KernelCache, args: {
  w: GPUBuffer;
  v: GPUBuffer;
  normSq: GPUBuffer;
  backup: GPUBuffer;
  mask?: GPUBuffer;
  n: number;
  rho: number;
  eps: number;
  adaptive?: boolean;
  label?: string;
}): Promise<Dispatch> {
  const label = args.label ?? "sam perturb";
  const setup = setupBuffer(kernels, label, args.n, args.rho, args.eps);
  return kernels.dispatch({
    kernel: SAM_KERNEL,
    entry: "perturb",
    constants: { ADAPTIVE: args.adaptive ?? false, MASKED: args.mask !== undefined },
    bindings: [
      setup,
      args.w,
      args.v,
      args.normSq,
      args.backup,
      args.mask ?? kernels.gpu.storage(`${label} no mask`, 16),
    ],
    workgroups: grid(args.n, 256),
    label,
  });
}

/** `sums[i] += g[i]²` over n values: one dispatch. */
export function addSquares(kernels: KernelCache, args: {
  g: GPUBuffer;
  sums: GPUBuffer;
  n: number;
  label?: string;
}): Promise<Dispatch> {
  const label = args.label ?? "add squares";
  return kernels.dispatch({
    kernel: SAM_KERNEL,
    entry: "add_squares",
    bindings: [setupBuffer(kernels, label, args.n), args.g, args.sums],
    workgroups: grid(args.n, 256),
    label,
  });
}
