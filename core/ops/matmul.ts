/**
 * Typed binding of `wgsl/matmul.wgsl`: C = act(alpha·op(A)·op(B) + bias) in the layouts `nn`,
 * `nt` and `tn`, optionally storing the pre-activation and accumulating into C. {@link matmul}
 * validates the shapes against the buffers and returns a {@link Dispatch} made once (pipeline,
 * bind group, uniform parameters) to be encoded every step.
 *
 * @module
 */

import {
  type Binding,
  type Dispatch,
  type KernelCache,
  type KernelSource,
  packUniform,
  wgsl,
} from "../kernels.ts";
import type { Gpu } from "../device.ts";
import { type Activation, activationId } from "./activation_ids.ts";
import matmulSource from "../../wgsl/matmul.wgsl" with { type: "text" };

/** `wgsl/matmul.wgsl`. */
export const MATMUL_KERNEL: KernelSource = wgsl("matmul", matmulSource);

/**
 * Which operands are transposed: `nn` A[M,K]·B[K,N], `nt` A[M,K]·B[N,K]ᵀ, `tn` A[K,M]ᵀ·B[K,N].
 */
export type MatmulLayout = "nn" | "nt" | "tn";

/** The LAYOUT override constant of each layout. */
export const MATMUL_LAYOUTS: Readonly<Record<MatmulLayout, number>> = { nn: 0, nt: 1, tn: 2 };

/**
 * A tile shape: a workgroup computes `m × n` outputs, walking K `k` at a time through workgroup
 * memory; each invocation computes `threadM × threadN` of them (at most 8 × 8).
 */
export interface MatmulTile {
  m: number;
  n: number;
  k: number;
  threadM: number;
  threadN: number;
}

/**
 * The tile used when none is given: 64 × 64 outputs, K steps of 8, 8 × 8 per invocation. On
 * llvmpipe this measured 0.60–0.65 GFLOP/s at the BottleneckMLP training shapes against 0.23–0.45
 * for 4 × 4 register tiles (loads, not FMAs, bound it there); per-adapter tuning replaces it.
 */
export const DEFAULT_MATMUL_TILE: Readonly<MatmulTile> = {
  m: 64,
  n: 64,
  k: 8,
  threadM: 8,
  threadN: 8,
};

/**
 * Tiles an autotuner sweeps (`deno task bench --tune`): register tiles from 4 × 4 to 8 × 8,
 * workgroup tiles from 32 × 32 to 128 × 64, K steps of 4 to 16 — all within 16 KiB of
 * workgroup memory and 256 invocations.
 */
export const MATMUL_TILE_CANDIDATES: readonly Readonly<MatmulTile>[] = [
  { m: 64, n: 64, k: 8, threadM: 8, threadN: 8 },
  { m: 64, n: 64, k: 16, threadM: 8, threadN: 8 },
  { m: 64, n: 64, k: 4, threadM: 8, threadN: 8 },
  { m: 32, n: 64, k: 8, threadM: 4, threadN: 8 },
  { m: 64, n: 32, k: 8, threadM: 8, threadN: 4 },
  { m: 32, n: 32, k: 8, threadM: 4, threadN: 4 },
  { m: 32, n: 32, k: 16, threadM: 8, threadN: 8 },
  { m: 64, n: 64, k: 16, threadM: 4, threadN: 4 },
  { m: 128, n: 64, k: 8, threadM: 8, threadN: 8 },
  { m: 64, n: 128, k: 8, threadM: 8, threadN: 8 },
  { m: 128, n: 64, k: 8, threadM: 8, threadN: 4 },
  { m: 16, n: 64, k: 16, threadM: 4, threadN: 8 },
];

/**
 * The built-in tile of an adapter class, used when no tuned tile is cached (core/tuning.ts). Both
 * classes use {@link DEFAULT_MATMUL_TILE} today: on llvmpipe it was the fastest measured; on
 * GPUs `deno task bench --tune` picks per shape. `layout` lets a class choose per layout.
 */
export function defaultMatmulTile(gpu: Gpu, _layout?: MatmulLayout): MatmulTile {
  return gpu.report.fallback ? { ...DEFAULT_MATMUL_TILE } : { ...DEFAULT_MATMUL_TILE };
}

/** Workgroup memory a tile may use: 16 KiB, the WebGPU default limit, for portability. */
export const MATMUL_MAX_WORKGROUP_BYTES = 16384;
/** The largest register tile side (`MAX_THREAD` in the kernel). */
export const MATMUL_MAX_THREAD_TILE = 8;

/** Arguments of {@link matmul}. Buffers may be whole buffers or ranges of one. */
export interface MatmulArgs {
  /** op(A): [M,K] for `nn`/`nt`, [K,M] for `tn`. */
  a: Binding;
  /** op(B): [K,N] for `nn`/`tn`, [N,K] for `nt`. */
  b: Binding;
  /** The output [M,N]; read too when `accumulate`. */
  c: Binding;
  m: number;
  n: number;
  k: number;
  layout: MatmulLayout;
  /** Added to every row, [N]. */
  bias?: Binding;
  /** Receives alpha·op(A)·op(B) + bias before the activation, [M,N]. */
  pre?: Binding;
  /** Applied last; default `identity`. */
  activation?: Activation;
  /** C += result instead of C = result. */
  accumulate?: boolean;
  /** Multiplies the product; default 1. */
  alpha?: number;
  /** Tile shape; fields left out take {@link DEFAULT_MATMUL_TILE}'s. */
  tile?: Partial<MatmulTile>;
  label?: string;
}

/** One pair of small dummy buffers per device, bound in place of an absent bias or pre. */
const dummies = new WeakMap<Gpu, { bias: GPUBuffer; pre: GPUBuffer }>();

function dummyBuffers(gpu: Gpu): { bias: GPUBuffer; pre: GPUBuffer } {
  let d = dummies.get(gpu);
  if (!d) {
    // Two buffers: one bound read-only, one writable; WebGPU forbids a buffer in both roles.
    d = { bias: gpu.storage("matmul unused bias", 16), pre: gpu.storage("matmul unused pre", 16) };
    dummies.set(gpu, d);
  }
  return d;
}

function bufferOf(binding: Binding): GPUBuffer {
  return binding instanceof GPUBuffer ? binding : binding.buffer;
}

function range(binding: Binding): { offset: number; bytes: number } {
  if (binding instanceof GPUBuffer) return { offset: 0, bytes: binding.size };
  const offset = binding.offset ?? 0;
  return { offset, bytes: binding.size ?? binding.buffer.size - offset };
}

function checkPositiveInteger(what: string, value: number, label: string): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`matmul "${label}": ${what} must be a positive integer, got ${value}`);
  }
}

/** The full tile with defaults filled in, checked against the kernel's and the device's limits. */
export function resolveMatmulTile(
  gpu: Gpu,
  tile: Partial<MatmulTile> = {},
  label = "matmul",
): MatmulTile {
  const t = { ...DEFAULT_MATMUL_TILE, ...tile };
  const shape = `tile ${JSON.stringify(t)}`;
  for (const key of ["m", "n", "k", "threadM", "threadN"] as const) {
    checkPositiveInteger(`tile.${key}`, t[key], label);
  }
  if (t.threadM > MATMUL_MAX_THREAD_TILE || t.threadN > MATMUL_MAX_THREAD_TILE) {
    throw new RangeError(
      `matmul "${label}": ${shape} has a register tile above ${MATMUL_MAX_THREAD_TILE} × ${MATMUL_MAX_THREAD_TILE}`,
    );
  }
  if (t.m % t.threadM !== 0 || t.n % t.threadN !== 0) {
    throw new RangeError(
      `matmul "${label}": ${shape}: m must be a multiple of threadM and n of threadN`,
    );
  }
  const limits = gpu.report.limits;
  const wgX = t.n / t.threadN;
  const wgY = t.m / t.threadM;
  const maxInvocations = limits.maxComputeInvocationsPerWorkgroup ?? 256;
  if (
    wgX * wgY > maxInvocations || wgX > (limits.maxComputeWorkgroupSizeX ?? 256) ||
    wgY > (limits.maxComputeWorkgroupSizeY ?? 256)
  ) {
    throw new RangeError(
      `matmul "${label}": ${shape} needs a workgroup of ${wgX} × ${wgY} invocations; the device allows ${maxInvocations} (maxComputeInvocationsPerWorkgroup)`,
    );
  }
  const bytes = (t.m + t.n) * t.k * 4;
  const maxBytes = Math.min(
    MATMUL_MAX_WORKGROUP_BYTES,
    limits.maxComputeWorkgroupStorageSize ?? MATMUL_MAX_WORKGROUP_BYTES,
  );
  if (bytes > maxBytes) {
    throw new RangeError(
      `matmul "${label}": ${shape} needs ${bytes} bytes of workgroup memory, more than ${maxBytes}`,
    );
  }
  return t;
}

/**
 * C[M,N] (=|+=) act(alpha·op(A)·op(B) + bias), with `pre` receiving the value before the
 * activation. Rejects with a RangeError naming the buffer and sizes when a buffer is too small
 * for the shape, and naming the shape when the grid or tile is out of range.
 */
export async function matmul(kernels: KernelCache, args: MatmulArgs): Promise<Dispatch> {
  const { m, n, k, layout } = args;
  const label = args.label ?? `matmul ${layout}`;
  const shape = `${layout} M=${m} N=${n} K=${k}`;
  if (!(layout in MATMUL_LAYOUTS)) {
    throw new RangeError(
      `matmul "${label}": unknown layout "${layout}"; known are "nn", "nt", "tn"`,
    );
  }
  checkPositiveInteger("M", m, label);
  checkPositiveInteger("N", n, label);
  checkPositiveInteger("K", k, label);
  const alpha = args.alpha ?? 1;
  if (!Number.isFinite(alpha)) {
    throw new RangeError(`matmul "${label}": alpha must be finite, got ${alpha}`);
  }
  const gpu = kernels.gpu;
  const tile = resolveMatmulTile(gpu, args.tile, label);
  const groupsX = Math.ceil(n / tile.n);
  const groupsY = Math.ceil(m / tile.m);
  const maxGroups = gpu.report.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  if (groupsX > maxGroups || groupsY > maxGroups) {
    throw new RangeError(
      `matmul "${label}": ${shape} with a ${tile.m} × ${tile.n} tile needs ${groupsX} × ${groupsY} workgroups; at most ${maxGroups} per dimension`,
    );
  }

  const need = (name: string, binding: Binding, what: string, floats: number) => {
    const { offset, bytes } = range(binding);
    const buffer = bufferOf(binding);
    if (offset > buffer.size) {
      throw new RangeError(
        `matmul "${label}": buffer "${buffer.label}" (${name}): offset ${offset} lies past its end (${buffer.size} bytes)`,
      );
    }
    if (bytes < floats * 4) {
      throw new RangeError(
        `matmul "${label}": buffer "${buffer.label}" (${name}) holds ${bytes} bytes ` +
          `but ${shape} needs ${what} = ${floats} floats (${floats * 4} bytes)`,
      );
    }
  };
  need("a", args.a, layout === "tn" ? `A[K=${k},M=${m}]` : `A[M=${m},K=${k}]`, m * k);
  need("b", args.b, layout === "nt" ? `B[N=${n},K=${k}]` : `B[K=${k},N=${n}]`, k * n);
  need("c", args.c, `C[M=${m},N=${n}]`, m * n);
  if (args.bias) need("bias", args.bias, `bias[N=${n}]`, n);
  if (args.pre) need("pre", args.pre, `pre[M=${m},N=${n}]`, m * n);

  // WebGPU forbids one buffer bound both writable and read-only in a dispatch, and two writable
  // views of overlapping bytes would race: say which, instead of a validation error later.
  const read = { a: args.a, b: args.b, bias: args.bias };
  for (const [wName, w] of Object.entries({ c: args.c, pre: args.pre })) {
    for (const [rName, r] of Object.entries(read)) {
      if (w && r && bufferOf(r) === bufferOf(w)) {
        const buffer = bufferOf(w).label;
        throw new RangeError(
          `matmul "${label}": buffer "${buffer}" is bound as ${wName} (written) and ${rName} (read)`,
        );
      }
    }
  }
  if (args.pre && bufferOf(args.pre) === bufferOf(args.c)) {
    const c = range(args.c);
    const p = range(args.pre);
    if (c.offset < p.offset + m * n * 4 && p.offset < c.offset + m * n * 4) {
      throw new RangeError(
        `matmul "${label}": c and pre overlap in buffer "${bufferOf(args.c).label}"`,
      );
    }
  }

  const dummy = dummyBuffers(gpu);
  const params = gpu.uniform(
    `${label} params`,
    packUniform([["u32", m], ["u32", n], ["u32", k], ["f32", alpha]]),
  );
  return await kernels.dispatch({
    kernel: MATMUL_KERNEL,
    constants: {
      LAYOUT: MATMUL_LAYOUTS[layout],
      HAS_BIAS: args.bias !== undefined,
      ACT: activationId(args.activation ?? "identity"),
      STORE_PRE: args.pre !== undefined,
      ACCUMULATE: args.accumulate === true,
      TILE_M: tile.m,
      TILE_N: tile.n,
      TILE_K: tile.k,
      THREAD_M: tile.threadM,
      THREAD_N: tile.threadN,
    },
    bindings: [args.a, args.b, args.c, args.bias ?? dummy.bias, args.pre ?? dummy.pre, params],
    workgroups: [groupsX, groupsY, 1],
    label,
  });
}
