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
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  type Storage,
  storageBytes,
  wgsl,
} from "../gpu/kernels.ts";
import type { Gpu } from "../gpu/device.ts";
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
 * How a tile is computed (`wgsl/matmul.wgsl`): `shared` stages op(A) and op(B) through workgroup
 * memory (entry point `main`, the GPU kernel); `direct` has every invocation read its operands
 * straight from global memory into a register tile, with no barrier (entry point `direct`, the
 * fast one on software adapters such as llvmpipe).
 */
export type MatmulStrategy = "shared" | "direct";

/**
 * A tile shape. `shared` (the default when `strategy` is absent): a workgroup computes an `m × n`
 * block of C with `(n / threadN) × (m / threadM)` invocations of `threadM × threadN` outputs each
 * (at most 8 × 8), walking K `k` at a time through workgroup memory. `direct`: a workgroup is a
 * line of `(m / threadM)·(n / threadN)` invocations, each taking the next `threadM × threadN`
 * register tile of C in row-major order (sides multiples of 4 up to 32); `k` is unused.
 */
export interface MatmulTile {
  strategy?: MatmulStrategy;
  m: number;
  n: number;
  k: number;
  threadM: number;
  threadN: number;
}

/**
 * The tile used on GPUs when none is given: shared memory, 64 × 64 outputs, K steps of 8, 8 × 8
 * per invocation; per-adapter tuning replaces it (core/tuning.ts).
 */
export const DEFAULT_MATMUL_TILE: Readonly<MatmulTile> = {
  strategy: "shared",
  m: 64,
  n: 64,
  k: 8,
  threadM: 8,
  threadN: 8,
};

/**
 * The tile used on a software adapter (`gpu.report.fallback`) when none is given: direct, 32 × 32
 * outputs per invocation, 8 invocations per workgroup (one 8-lane SIMD vector of llvmpipe). On
 * llvmpipe every load costs ~20 cycles per lane and 32 × 32 needs one load per 16 fma: 4.5–5.7
 * GFLOP/s at the BottleneckMLP training shapes (6.7 at 1024³) against 0.56–0.79 for
 * {@link DEFAULT_MATMUL_TILE} (2 cores). Its pipeline takes ~3 s to compile there (LLVM on 4096
 * fma, most of it spilled).
 */
export const MATMUL_FALLBACK_TILE: Readonly<MatmulTile> = {
  strategy: "direct",
  m: 32,
  n: 256,
  k: 1,
  threadM: 32,
  threadN: 32,
};

/**
 * The software adapter's tile for products below {@link MATMUL_FALLBACK_SMALL_FMAS}: direct
 * 16 × 16, ~0.6 s to compile on llvmpipe instead of ~3 s, at 60–75 % of the 32 × 32 speed: the
 * 2 s saved are only won back by thousands of dispatches of such a product.
 */
export const MATMUL_FALLBACK_SMALL_TILE: Readonly<MatmulTile> = {
  strategy: "direct",
  m: 16,
  n: 128,
  k: 1,
  threadM: 16,
  threadN: 16,
};

/** M·N·K below which the software adapter's default is {@link MATMUL_FALLBACK_SMALL_TILE}. */
export const MATMUL_FALLBACK_SMALL_FMAS = 1 << 22;

/**
 * Tiles an autotuner sweeps (`deno task bench --tune`): shared tiles with register tiles from
 * 4 × 4 to 8 × 8, workgroup tiles from 32 × 32 to 128 × 64 and K steps of 8 or 16 (all within
 * 16 KiB of workgroup memory and 256 invocations), and direct tiles from 8 × 8 to 32 × 32 per
 * invocation in workgroups of 8 (llvmpipe's SIMD width) to 64 invocations.
 */
export const MATMUL_TILE_CANDIDATES: readonly Readonly<MatmulTile>[] = [
  { strategy: "shared", m: 64, n: 64, k: 8, threadM: 8, threadN: 8 },
  { strategy: "shared", m: 64, n: 64, k: 16, threadM: 8, threadN: 8 },
  { strategy: "shared", m: 32, n: 64, k: 8, threadM: 4, threadN: 8 },
  { strategy: "shared", m: 32, n: 32, k: 8, threadM: 4, threadN: 4 },
  { strategy: "shared", m: 64, n: 64, k: 16, threadM: 4, threadN: 4 },
  { strategy: "shared", m: 128, n: 64, k: 8, threadM: 8, threadN: 8 },
  { strategy: "shared", m: 64, n: 128, k: 8, threadM: 8, threadN: 8 },
  { strategy: "direct", m: 32, n: 256, k: 1, threadM: 32, threadN: 32 },
  { strategy: "direct", m: 64, n: 256, k: 1, threadM: 32, threadN: 32 },
  { strategy: "direct", m: 32, n: 128, k: 1, threadM: 32, threadN: 16 },
  { strategy: "direct", m: 16, n: 256, k: 1, threadM: 16, threadN: 32 },
  { strategy: "direct", m: 16, n: 128, k: 1, threadM: 16, threadN: 16 },
  { strategy: "direct", m: 64, n: 64, k: 1, threadM: 8, threadN: 8 },
];

/**
 * The built-in tile of an adapter class, used when no tuned tile is cached (core/tuning.ts): on a
 * software adapter {@link MATMUL_FALLBACK_TILE} ({@link MATMUL_FALLBACK_SMALL_TILE} when `shape`
 * says the product is small), otherwise {@link DEFAULT_MATMUL_TILE}. `layout` lets a class choose
 * per layout (one tile served all three best when measured).
 */
export function defaultMatmulTile(
  gpu: Gpu,
  _layout?: MatmulLayout,
  shape?: { m: number; n: number; k: number },
): MatmulTile {
  if (!gpu.report.fallback) return { ...DEFAULT_MATMUL_TILE };
  const small = shape !== undefined && shape.m * shape.n * shape.k < MATMUL_FALLBACK_SMALL_FMAS;
  return { ...(small ? MATMUL_FALLBACK_SMALL_TILE : MATMUL_FALLBACK_TILE) };
}

/** Workgroup memory a tile may use: 16 KiB, the WebGPU default limit, for portability. */
export const MATMUL_MAX_WORKGROUP_BYTES = 16384;
/** The largest register tile side of the `shared` strategy (`MAX_THREAD` in the kernel). */
export const MATMUL_MAX_THREAD_TILE = 8;
/** The largest register tile side of the `direct` strategy (8 quads of 4 in the kernel). */
export const MATMUL_MAX_DIRECT_THREAD_TILE = 32;

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
  /**
   * `count` products in one dispatch: product z reads a from element z·strideA, b from z·strideB
   * and writes c (and pre) from z·strideC (a stride of 0 shares that operand across the batch).
   * Default: one product.
   */
  batch?: { count: number; strideA: number; strideB: number; strideC: number };
  /**
   * Tile shape; default {@link defaultMatmulTile} of the device, layout and shape. Fields left
   * out take {@link DEFAULT_MATMUL_TILE}'s, or {@link MATMUL_FALLBACK_TILE}'s for a direct tile.
   */
  tile?: Partial<MatmulTile>;
  /**
   * Element types of the buffers (default f32): f16 needs `shader-f16`. The product accumulates
   * in f32 whatever they are; C and pre are rounded once when stored.
   */
  storage?: MatmulStorage;
  label?: string;
}

/** Storage types of a matmul's buffers; `c` covers C and pre. */
export interface MatmulStorage {
  a?: Storage;
  b?: Storage;
  c?: Storage;
  bias?: Storage;
}

/** Two small dummy buffers per device, bound in place of an absent bias, pre or vec4 view. */
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

/**
 * The full tile with defaults filled in (those of its strategy), checked against the kernel's and
 * the device's limits.
 */
export function resolveMatmulTile(
  gpu: Gpu,
  tile: Partial<MatmulTile> = {},
  label = "matmul",
): Required<MatmulTile> {
  const strategy = tile.strategy ?? "shared";
  if (strategy !== "shared" && strategy !== "direct") {
    throw new RangeError(
      `matmul "${label}": unknown tile strategy "${strategy}"; known are "direct", "shared"`,
    );
  }
  const base = strategy === "direct" ? MATMUL_FALLBACK_TILE : DEFAULT_MATMUL_TILE;
  const t = { ...base, ...tile, strategy } as Required<MatmulTile>;
  const shape = `tile ${JSON.stringify(t)}`;
  for (const key of ["m", "n", "k", "threadM", "threadN"] as const) {
    checkPositiveInteger(`tile.${key}`, t[key], label);
  }
  if (strategy === "shared") {
    if (t.threadM > MATMUL_MAX_THREAD_TILE || t.threadN > MATMUL_MAX_THREAD_TILE) {
      throw new RangeError(
        `matmul "${label}": ${shape} has a register tile above ${MATMUL_MAX_THREAD_TILE} × ${MATMUL_MAX_THREAD_TILE}`,
      );
    }
  } else if (
    t.threadM % 4 !== 0 || t.threadN % 4 !== 0 ||
    t.threadM > MATMUL_MAX_DIRECT_THREAD_TILE || t.threadN > MATMUL_MAX_DIRECT_THREAD_TILE
  ) {
    throw new RangeError(
      `matmul "${label}": ${shape}: a direct register tile's sides must be multiples of 4 up to ${MATMUL_MAX_DIRECT_THREAD_TILE}`,
    );
  }
  if (t.m % t.threadM !== 0 || t.n % t.threadN !== 0) {
    throw new RangeError(
      `matmul "${label}": ${shape}: m must be a multiple of threadM and n of threadN`,
    );
  }
  const limits = gpu.report.limits;
  // The workgroup's shape: a rectangle for shared, a line for direct.
  const [wgX, wgY] = strategy === "shared"
    ? [t.n / t.threadN, t.m / t.threadM]
    : [(t.n / t.threadN) * (t.m / t.threadM), 1];
  const maxInvocations = limits.maxComputeInvocationsPerWorkgroup ?? 256;
  if (
    wgX * wgY > maxInvocations || wgX > (limits.maxComputeWorkgroupSizeX ?? 256) ||
    wgY > (limits.maxComputeWorkgroupSizeY ?? 256)
  ) {
    throw new RangeError(
      `matmul "${label}": ${shape} needs a workgroup of ${wgX} × ${wgY} invocations; the device allows ${maxInvocations} (maxComputeInvocationsPerWorkgroup)`,
    );
  }
  // shared: the operand tiles; direct: the epilogue's staging of 4 rows per invocation.
  const bytes = strategy === "shared" ? (t.m + t.n) * t.k * 4 : wgX * wgY * 4 * t.threadN * 4;
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
  const batch = args.batch ?? { count: 1, strideA: 0, strideB: 0, strideC: 0 };
  checkPositiveInteger("batch count", batch.count, label);
  for (const key of ["strideA", "strideB", "strideC"] as const) {
    if (!Number.isInteger(batch[key]) || batch[key] < 0) {
      throw new RangeError(`matmul "${label}": batch.${key} must be an integer ≥ 0`);
    }
  }
  if (batch.count > 1 && batch.strideC < m * n) {
    throw new RangeError(
      `matmul "${label}": batch.strideC ${batch.strideC} < M·N = ${m * n}: products would overlap`,
    );
  }
  // Elements each operand spans over the batch.
  const span = (stride: number, one: number) => (batch.count - 1) * stride + one;
  const tile = resolveMatmulTile(gpu, args.tile ?? defaultMatmulTile(gpu, layout, args), label);
  // shared: a rectangle of workgroups, each a TILE_M × TILE_N block of C; direct: one register
  // tile per invocation, numbered row-major, in a line of workgroups split over x and y.
  const registerTiles = Math.ceil(m / tile.threadM) * Math.ceil(n / tile.threadN);
  const invocations = (tile.m / tile.threadM) * (tile.n / tile.threadN);
  const [groupsX, groupsY] = tile.strategy === "shared"
    ? [Math.ceil(n / tile.n), Math.ceil(m / tile.m)]
    : grid(registerTiles, invocations);
  const maxGroups = gpu.report.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  if (groupsX > maxGroups || groupsY > maxGroups || batch.count > maxGroups) {
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
    const type = storage[name === "pre" ? "c" : name as keyof MatmulStorage] ?? "f32";
    const needed = floats * storageBytes(type);
    if (bytes < needed) {
      throw new RangeError(
        `matmul "${label}": buffer "${buffer.label}" (${name}) holds ${bytes} bytes ` +
          `but ${shape} needs ${what} = ${floats} ${type} values (${needed} bytes)`,
      );
    }
  };
  const storage = args.storage ?? {};
  const times = batch.count > 1 ? `${batch.count}×` : "";
  need(
    "a",
    args.a,
    `${times}${layout === "tn" ? `A[K=${k},M=${m}]` : `A[M=${m},K=${k}]`}`,
    span(batch.strideA, m * k),
  );
  need(
    "b",
    args.b,
    `${times}${layout === "nt" ? `B[N=${n},K=${k}]` : `B[K=${k},N=${n}]`}`,
    span(batch.strideB, k * n),
  );
  need("c", args.c, `${times}C[M=${m},N=${n}]`, span(batch.strideC, m * n));
  if (args.bias) need("bias", args.bias, `bias[N=${n}]`, n);
  if (args.pre) need("pre", args.pre, `${times}pre[M=${m},N=${n}]`, span(batch.strideC, m * n));

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
    const bytes = span(batch.strideC, m * n) * 4;
    if (c.offset < p.offset + bytes && p.offset < c.offset + bytes) {
      throw new RangeError(
        `matmul "${label}": c and pre overlap in buffer "${bufferOf(args.c).label}"`,
      );
    }
  }

  const dummy = dummyBuffers(gpu);
  const params = gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", m],
      ["u32", n],
      ["u32", k],
      ["f32", alpha],
      ["u32", batch.count],
      ["u32", batch.strideA],
      ["u32", batch.strideB],
      ["u32", batch.strideC],
    ]),
  );
  const constants = {
    LAYOUT: MATMUL_LAYOUTS[layout],
    HAS_BIAS: args.bias !== undefined,
    ACT: activationId(args.activation ?? "identity"),
    STORE_PRE: args.pre !== undefined,
    ACCUMULATE: args.accumulate === true,
    BATCHED: batch.count > 1,
    TILE_M: tile.m,
    TILE_N: tile.n,
    THREAD_M: tile.threadM,
    THREAD_N: tile.threadN,
  };
  const bindings = [args.a, args.b, args.c, args.bias ?? dummy.bias, args.pre ?? dummy.pre, params];
  const types = {
    A_T: storage.a ?? "f32",
    B_T: storage.b ?? "f32",
    C_T: storage.c ?? "f32",
    BIAS_T: storage.bias ?? "f32",
  };
  if (tile.strategy === "shared") {
    return await kernels.dispatch({
      kernel: MATMUL_KERNEL,
      storage: types,
      constants: { ...constants, TILE_K: tile.k },
      bindings,
      workgroups: [groupsX, groupsY, batch.count],
      label,
    });
  }
  // A row (column) quad of op(A) (op(B)) is 4 contiguous floats where that operand is stored with
  // rows (columns) innermost and their count is a multiple of 4: then a second, vec4 view of the
  // same bytes is bound (read-only twice is allowed); otherwise a dummy takes its place.
  const vec4A = layout === "tn" && m % 4 === 0 && batch.strideA % 4 === 0;
  const vec4B = layout !== "nt" && n % 4 === 0 && batch.strideB % 4 === 0;
  const view = (binding: Binding, elements: number, type: Storage): Binding => ({
    buffer: bufferOf(binding),
    offset: range(binding).offset,
    size: elements * storageBytes(type),
  });
  return await kernels.dispatch({
    kernel: MATMUL_KERNEL,
    entry: "direct",
    storage: types,
    constants: { ...constants, VEC4_A: vec4A, VEC4_B: vec4B },
    bindings: [
      ...bindings,
      vec4A ? view(args.a, span(batch.strideA, m * k), types.A_T) : dummy.bias,
      vec4B ? view(args.b, span(batch.strideB, k * n), types.B_T) : dummy.bias,
    ],
    workgroups: [groupsX, groupsY, batch.count],
    label,
  });
}
