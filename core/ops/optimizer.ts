/**
 * Typed bindings of the fused optimizer kernels `wgsl/optimizer.wgsl`: SGD and LAMB over one flat
 * parameter buffer split into segments (tensors), plus the step counter and the segment table
 * every optimizer reads. Elementwise optimizers written with `defineOptimizer` (Adam, AdamW, LION,
 * …) are generated from `wgsl/optimizer_template.wgsl` instead.
 *
 * Each optimizer function returns the dispatches of ONE step, in order, made once and encoded every
 * step; the step number, the learning rate and the gradient norm are read from GPU buffers, so
 * several steps may be encoded in one submission. The caller encodes {@link advanceStep} last in
 * each step (after anything else that reads the counter).
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import {
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  type UniformField,
  wgsl,
} from "../gpu/kernels.ts";
import optimizerSource from "../../wgsl/optimizer.wgsl" with { type: "text" };

/** `wgsl/optimizer.wgsl`. */
export const OPTIMIZER_KERNEL: KernelSource = wgsl("optimizer", optimizerSource);

/** One tensor of the flat parameter buffer: elements [start, end). */
export interface ParamSegment {
  start: number;
  end: number;
  /** Multiplies the scheduled learning rate. */
  lrMult: number;
  /** λ of this tensor (the engine gives biases and norm parameters 0). */
  weightDecay: number;
}

/** Bytes per entry of the segment table: start u32, end u32, lr_mult f32, weight_decay f32. */
export const SEGMENT_BYTES = 16;

/**
 * The segment table as a storage buffer (made once). Segments must be sorted, non-overlapping,
 * integer offsets; elements outside every segment are never updated.
 */
export function segmentTable(gpu: Gpu, segments: readonly ParamSegment[]): GPUBuffer {
  if (segments.length === 0) throw new RangeError("segmentTable: no segments given");
  const bytes = new ArrayBuffer(segments.length * SEGMENT_BYTES);
  const view = new DataView(bytes);
  let previousEnd = 0;
  segments.forEach((s, k) => {
    const ok = Number.isInteger(s.start) && Number.isInteger(s.end) && s.start >= previousEnd &&
      s.end >= s.start && s.end <= 0xffffffff;
    if (!ok) {
      throw new RangeError(
        `segmentTable: segment ${k} [${s.start}, ${s.end}) must be integer offsets, start ≤ end, ` +
          `starting at or after the previous end ${previousEnd}`,
      );
    }
    if (!Number.isFinite(s.lrMult) || !Number.isFinite(s.weightDecay)) {
      throw new RangeError(
        `segmentTable: segment ${k} has lrMult ${s.lrMult}, weightDecay ${s.weightDecay}; both must be finite`,
      );
    }
    previousEnd = s.end;
    view.setUint32(k * SEGMENT_BYTES, s.start, true);
    view.setUint32(k * SEGMENT_BYTES + 4, s.end, true);
    view.setFloat32(k * SEGMENT_BYTES + 8, s.lrMult, true);
    view.setFloat32(k * SEGMENT_BYTES + 12, s.weightDecay, true);
  });
  return gpu.storage("optimizer segments", new Uint8Array(bytes));
}

/** Buffers and options shared by every optimizer. */
export interface OptimizerBuffers {
  /** Flat f32 parameters (n), updated in place. */
  params: GPUBuffer;
  /** Flat f32 gradients (n), unscaled. */
  grads: GPUBuffer;
  /** {@link segmentTable} and its number of segments. */
  segments: GPUBuffer;
  segmentCount: number;
  /** u32 counters; [0] = optimizer steps already taken. */
  counters: GPUBuffer;
  /** f32 learning rate of every step. */
  lrTable: GPUBuffer;
  /** f32; [0] = Σg² of the unscaled gradients. Needed only when maxNorm > 0. */
  gradNorm?: GPUBuffer;
  /** Number of parameters. */
  n: number;
  /** Global-norm clipping threshold of the scaled gradient; 0 (default) disables clipping. */
  maxNorm?: number;
  /** Multiplies the gradient before clipping, e.g. 1/K for K accumulated micro-batches (1). */
  gradScale?: number;
  /** Prefix of labels in errors; default the entry point. */
  label?: string;
}

/** SGD hyperparameters (torch.optim.SGD). */
export interface SgdOptions {
  /** Momentum buffer (n); needed when momentum ≠ 0. */
  m?: GPUBuffer;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

/** LAMB hyperparameters (timm's Lamb). */
export interface LambOptions {
  m: GPUBuffer;
  v: GPUBuffer;
  /** Scratch (n) for the raw update r between the two passes. */
  update: GPUBuffer;
  /** f32 (2·segmentCount): [s] = Σθ², [segmentCount + s] = Σr² of segment s. */
  segNorms: GPUBuffer;
  /** Encode this file's `segment_sumsq` between the passes (default true); false when the engine
   * fills `segNorms` itself with the shared reduction. */
  computeNorms?: boolean;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Apply the trust ratio to segments with λ = 0 too (default false, as timm). */
  alwaysAdapt?: boolean;
  /** LAMBC: trust ratio capped at 1 (default false). */
  trustClip?: boolean;
}

interface Hyper {
  beta1: number;
  beta2: number;
  eps: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
}

const NO_HYPER: Hyper = { beta1: 0, beta2: 0, eps: 0, momentum: 0, dampening: 0, nesterov: false };

function checkRange(what: string, value: number, lo: number, hi: number, label: string): void {
  if (!(value >= lo && value < hi)) {
    throw new RangeError(`${label}: ${what} ${value} is outside [${lo}, ${hi})`);
  }
}

function checkBuffer(buffer: GPUBuffer, what: string, bytes: number, label: string): void {
  if (buffer.size < bytes) {
    throw new RangeError(
      `${label}: buffer ${what} ("${buffer.label}") has ${buffer.size} bytes, needs ${bytes}`,
    );
  }
}

/** ln β in float64, kept finite so that β = 0 gives 1 − βᵗ = 1 without infinities on the GPU. */
function logBeta(beta: number): number {
  return beta > 0 ? Math.max(Math.log(beta), -80) : -80;
}

/** The OptimParams uniform (made once per Dispatch) after validating sizes and options. */
function optimParams(gpu: Gpu, b: OptimizerBuffers, h: Hyper, label: string): GPUBuffer {
  if (!Number.isInteger(b.n) || b.n < 1) throw new RangeError(`${label}: n ${b.n} must be ≥ 1`);
  if (!Number.isInteger(b.segmentCount) || b.segmentCount < 1) {
    throw new RangeError(`${label}: segmentCount ${b.segmentCount} must be an integer ≥ 1`);
  }
  checkBuffer(b.params, "params", 4 * b.n, label);
  checkBuffer(b.grads, "grads", 4 * b.n, label);
  checkBuffer(b.segments, "segments", SEGMENT_BYTES * b.segmentCount, label);
  const maxNorm = b.maxNorm ?? 0;
  const gradScale = b.gradScale ?? 1;
  if (!(maxNorm >= 0) || !Number.isFinite(gradScale)) {
    throw new RangeError(`${label}: maxNorm ${maxNorm} must be ≥ 0, gradScale ${gradScale} finite`);
  }
  checkRange("beta1", h.beta1, 0, 1, label);
  checkRange("beta2", h.beta2, 0, 1, label);
  if (!(h.eps >= 0)) throw new RangeError(`${label}: eps ${h.eps} must be ≥ 0`);
  checkRange("momentum", h.momentum, 0, Infinity, label);
  if (!Number.isFinite(h.dampening)) {
    throw new RangeError(`${label}: dampening ${h.dampening} must be finite`);
  }
  if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) {
    throw new RangeError(
      `${label}: nesterov needs momentum > 0 and dampening 0, got momentum ${h.momentum}, dampening ${h.dampening}`,
    );
  }
  return gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", b.n],
      ["u32", b.segmentCount],
      ["u32", h.nesterov ? 1 : 0],
      ["u32", 0],
      ["f32", h.beta1],
      ["f32", 1 - h.beta1],
      ["f32", h.beta2],
      ["f32", 1 - h.beta2],
      ["f32", logBeta(h.beta1)],
      ["f32", logBeta(h.beta2)],
      ["f32", h.eps],
      ["f32", h.momentum],
      ["f32", 1 - h.dampening],
      ["f32", maxNorm],
      ["f32", gradScale],
      ["f32", 0],
    ]),
  );
}

const ZERO_FIELDS: readonly UniformField[] = Array.from({ length: 14 }, () => ["u32", 0] as const);

/** A 16-byte placeholder bound where a kernel declares a buffer this configuration never reads. */
function placeholder(gpu: Gpu, what: string, label: string): GPUBuffer {
  return gpu.storage(`${label} unused ${what}`, 16);
}

/** The bindings 0..6 that the elementwise entries share. */
function common(gpu: Gpu, b: OptimizerBuffers, opt: GPUBuffer, label: string): GPUBuffer[] {
  const gradNorm = b.gradNorm ??
    ((b.maxNorm ?? 0) > 0
      ? (() => {
        throw new RangeError(`${label}: maxNorm ${b.maxNorm} > 0 needs the gradNorm buffer`);
      })()
      : placeholder(gpu, "gradNorm", label));
  return [b.params, b.grads, b.segments, b.counters, b.lrTable, gradNorm, opt];
}

/** One SGD step (torch.optim.SGD with coupled weight decay; momentum 0 is plain SGD). */
export async function sgd(
  kernels: KernelCache,
  args: OptimizerBuffers & SgdOptions,
): Promise<Dispatch[]> {
  const label = args.label ?? "optimizer.sgd";
  const h = {
    ...NO_HYPER,
    momentum: args.momentum ?? 0,
    dampening: args.dampening ?? 0,
    nesterov: args.nesterov ?? false,
  };
  const opt = optimParams(kernels.gpu, args, h, label);
  if (h.momentum !== 0 && !args.m) {
    throw new RangeError(`${label}: momentum ${h.momentum} needs the momentum buffer m`);
  }
  if (args.m) checkBuffer(args.m, "m", 4 * args.n, label);
  const m = args.m ?? placeholder(kernels.gpu, "m", label);
  return [
    await kernels.dispatch({
      kernel: OPTIMIZER_KERNEL,
      entry: "sgd",
      bindings: [...common(kernels.gpu, args, opt, label), m],
      workgroups: grid(args.n, 256),
      label,
    }),
  ];
}

/**
 * One LAMB step: `lamb_moments`, then (unless `computeNorms: false`) `segment_sumsq` filling
 * `segNorms` with per-segment Σθ², Σr², then `lamb_apply`.
 */
export async function lamb(
  kernels: KernelCache,
  args: OptimizerBuffers & LambOptions,
): Promise<Dispatch[]> {
  const label = args.label ?? "optimizer.lamb";
  const gpu = kernels.gpu;
  const h = {
    ...NO_HYPER,
    beta1: args.beta1 ?? 0.9,
    beta2: args.beta2 ?? 0.999,
    eps: args.eps ?? 1e-6,
  };
  const opt = optimParams(gpu, args, h, label);
  for (const [what, buffer] of [["m", args.m], ["v", args.v], ["update", args.update]] as const) {
    checkBuffer(buffer, what, 4 * args.n, label);
  }
  checkBuffer(args.segNorms, "segNorms", 8 * args.segmentCount, label);
  const shared = common(gpu, args, opt, label);
  const moments = await kernels.dispatch({
    kernel: OPTIMIZER_KERNEL,
    entry: "lamb_moments",
    bindings: [
      args.params,
      args.grads,
      args.segments,
      args.counters,
      args.update,
      shared[5]!,
      opt,
      args.m,
      args.v,
    ],
    workgroups: grid(args.n, 256),
    label: `${label} moments`,
  });
  const apply = await kernels.dispatch({
    kernel: OPTIMIZER_KERNEL,
    entry: "lamb_apply",
    constants: { ALWAYS_ADAPT: args.alwaysAdapt ?? false, TRUST_CLIP: args.trustClip ?? false },
    bindings: [
      args.params,
      args.update,
      args.segments,
      args.counters,
      args.lrTable,
      args.segNorms,
      opt,
    ],
    workgroups: grid(args.n, 256),
    label: `${label} apply`,
  });
  if (args.computeNorms === false) return [moments, apply];
  const norms = await segmentSumSq(kernels, {
    a: args.params,
    b: args.update,
    segments: args.segments,
    segmentCount: args.segmentCount,
    out: args.segNorms,
    n: args.n,
    label: `${label} norms`,
  });
  return [moments, norms, apply];
}

/** out[s] = Σ a², out[S + s] = Σ b² over each of the S segments (elements < n); one workgroup per segment. */
export function segmentSumSq(
  kernels: KernelCache,
  args: {
    a: GPUBuffer;
    b: GPUBuffer;
    segments: GPUBuffer;
    segmentCount: number;
    out: GPUBuffer;
    n: number;
    label?: string;
  },
): Promise<Dispatch> {
  const label = args.label ?? "optimizer.segment_sumsq";
  const params = kernels.gpu.uniform(
    `${label} params`,
    // The full OptimParams layout (64 bytes): the entry reads only n and num_segments.
    packUniform([["u32", args.n], ["u32", args.segmentCount], ...ZERO_FIELDS]),
  );
  checkBuffer(args.out, "out", 8 * args.segmentCount, label);
  return kernels.dispatch({
    kernel: OPTIMIZER_KERNEL,
    entry: "segment_sumsq",
    bindings: [args.a, args.b, args.segments, args.out, params],
    workgroups: grid(args.segmentCount, 1),
    label,
  });
}

/** counters[0] += 1 in one invocation; encode it last in every step. */
export function advanceStep(
  kernels: KernelCache,
  args: { counters: GPUBuffer; label?: string },
): Promise<Dispatch> {
  return kernels.dispatch({
    kernel: OPTIMIZER_KERNEL,
    entry: "advance_step",
    bindings: [args.counters],
    workgroups: 1,
    label: args.label ?? "optimizer.advance_step",
  });
}
