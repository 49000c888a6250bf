/**
 * One matmul case run on the GPU and in float64, shared by tests/matmul_test.ts and
 * tests/matmul_variants_test.ts.
 *
 * @module
 */

import { submitDispatches } from "../../core/gpu/kernels.ts";
import type { Activation } from "../../core/ops/activation_ids.ts";
import { type Storage, storageArray } from "../../core/gpu/device.ts";
import {
  matmul,
  type MatmulLayout,
  type MatmulStorage,
  type MatmulTile,
} from "../../core/ops/matmul.ts";
import { matmulRef } from "../reference/matmul.ts";
import { poisoned, storedAs, testGpu } from "./gpu.ts";
import { uniformF32 } from "./random.ts";

/**
 * Tolerances for a K-long f32 dot product of values in [-1, 1]. Each fma rounds to half an ulp of
 * the partial sum, |s| ~ √K/3 (up to ~4× that in the extreme outputs of thousands); the roundings
 * have random signs, so the error grows like 2⁻²⁴·|s|·√K, i.e. roughly linearly in K: measured
 * worst 1.2e-5 at K = 257 and 9e-5 at K = 1000 (llvmpipe). atol 1e-5·√K (1.6e-4, 3.2e-4) keeps a
 * margin of 3.5–13 at these K (the largest tested) and stays far below the error of a wrong index
 * or a dropped K step (≥ |a·b| ~ 0.1). It would need to grow faster than √K for K ≫ 1000.
 */
export function tolerance(k: number): { atol: number; rtol: number } {
  return { atol: 1e-5 * Math.sqrt(k), rtol: 1e-4 };
}

export interface MatmulCase {
  layout: MatmulLayout;
  m: number;
  n: number;
  k: number;
  seed: number;
  bias?: boolean;
  pre?: boolean;
  activation?: Activation;
  alpha?: number;
  /** Start C with random values and encode the dispatch this many times, accumulating. */
  accumulateTimes?: number;
  tile?: Partial<MatmulTile>;
  /** Put ±Inf at the start of stored rows 1 and 3 of this operand. */
  infinities?: "a" | "b";
  /** Element types of the buffers (default f32); f16 inputs are rounded before the reference. */
  storage?: MatmulStorage;
}

/** Sets the first element of stored rows 1 and 3 (of `rowLength` values) to +Inf and −Inf. */
function plantInfinities(values: Float32Array, rowLength: number): void {
  for (const [row, value] of [[1, Infinity], [3, -Infinity]] as const) {
    if ((row + 1) * rowLength <= values.length) values[row * rowLength] = value;
  }
}

/** Runs one case on the GPU and in float64; buffers are destroyed before returning. */
export async function runMatmulCase(c: MatmulCase) {
  const { gpu, kernels } = await testGpu();
  const { m, n, k, seed } = c;
  const types = c.storage ?? {};
  const a = storedAs(uniformF32(m * k, seed), types.a);
  const b = storedAs(uniformF32(k * n, seed + 1), types.b);
  if (c.infinities === "a") plantInfinities(a, c.layout === "tn" ? m : k);
  if (c.infinities === "b") plantInfinities(b, c.layout === "nt" ? k : n);
  const bias = c.bias ? storedAs(uniformF32(n, seed + 2), types.bias) : undefined;
  const c0 = c.accumulateTimes ? storedAs(uniformF32(m * n, seed + 3, -2, 2), types.c) : undefined;
  const upload = (label: string, values: Float32Array, type: Storage = "f32") =>
    gpu.storage(label, storageArray(values, type));
  const nan = (label: string) => poisoned(gpu, label, m * n, types.c);
  const buffers = {
    a: upload("matmul test a", a, types.a),
    b: upload("matmul test b", b, types.b),
    c: c0 ? upload("matmul test c", c0, types.c) : nan("matmul test c"),
    bias: bias ? upload("matmul test bias", bias, types.bias) : undefined,
    pre: c.pre ? nan("matmul test pre") : undefined,
  };
  try {
    const dispatch = await matmul(kernels, {
      ...buffers,
      m,
      n,
      k,
      layout: c.layout,
      activation: c.activation,
      alpha: c.alpha,
      accumulate: c.accumulateTimes !== undefined,
      tile: c.tile,
      storage: c.storage,
    });
    submitDispatches(gpu, Array(c.accumulateTimes ?? 1).fill(dispatch));
    const got = {
      c: await gpu.readValues(buffers.c, m * n, types.c),
      pre: buffers.pre ? await gpu.readValues(buffers.pre, m * n, types.c) : undefined,
    };
    const once = matmulRef(c.layout, a, b, m, n, k, {
      bias,
      activation: c.activation,
      alpha: c.alpha,
    });
    // Accumulating t times adds t·act(pre) to C0.
    const expected = c0 ? once.c.map((v, i) => c0[i]! + (c.accumulateTimes ?? 1) * v) : once.c;
    return { got, expected: { c: expected, pre: once.pre }, dispatch };
  } finally {
    for (const buffer of Object.values(buffers)) buffer?.destroy();
  }
}
