/**
 * A linear layer's weight gradient dW[out, in] = dyᵀ·x summed over the rows of the batch — split
 * over chunks of rows when the product is tall and thin: a Mixer's token-mixing layer sums over
 * batch × channels rows (8192 at batch 128, width 64) into a 32 × 16 weight, which one matmul
 * would give to two invocations of a software adapter's direct tile, each walking all 8192 rows.
 * There the rows are cut into S equal chunks (S divides the rows), the S partial products are one
 * batched matmul into a scratch buffer [S, out, in], and an axis sum adds them into dW.
 *
 * @module
 */

import type { Dispatch } from "../gpu/kernels.ts";
import type { Storage } from "../gpu/device.ts";
import { matmul, type MatmulTile } from "../ops/matmul.ts";
import { axisReduce } from "../ops/shape.ts";
import { tileFor } from "../ops/tuning.ts";
import type { GradSlot, RuleContext } from "./rules.ts";
import type { BufferRef } from "../gpu/kernels.ts";

/** Invocations a split weight gradient aims at: 8 workgroups of llvmpipe's 8-lane SIMD. */
const SPLIT_INVOCATIONS = 64;
/** The fewest rows a chunk sums. */
const SPLIT_MIN_ROWS = 64;

/** Register tiles of one product's output under `tile`. */
function registerTiles(tile: MatmulTile, m: number, n: number): number {
  return Math.ceil(m / tile.threadM) * Math.ceil(n / tile.threadN);
}

/**
 * The chunks of rows to split dW[out, in] over `rows` into: 1 (no split) unless on a software
 * adapter with a direct tile that leaves fewer than {@link SPLIT_INVOCATIONS} invocations busy;
 * then the largest divisor of `rows` up to what fills them, with chunks of at least
 * {@link SPLIT_MIN_ROWS} rows.
 */
export function weightGradChunks(
  fallback: boolean,
  tile: MatmulTile,
  rows: number,
  out: number,
  inFeatures: number,
): number {
  if (!fallback || tile.strategy !== "direct") return 1;
  const tiles = registerTiles(tile, out, inFeatures);
  let chunks = Math.min(Math.ceil(SPLIT_INVOCATIONS / tiles), Math.floor(rows / SPLIT_MIN_ROWS));
  while (chunks > 1 && rows % chunks !== 0) chunks--;
  return Math.max(1, chunks);
}

/** dW (=|+=) dyᵀ·x over `rows`: dy [rows, out] (f32), x [rows, in]. */
export async function weightGradient(
  ctx: RuleContext,
  args: {
    dy: BufferRef;
    x: BufferRef;
    xStorage: Storage;
    dw: GradSlot;
    rows: number;
    out: number;
    inFeatures: number;
    label: string;
  },
): Promise<Dispatch[]> {
  const { dy, x, dw, rows, out, inFeatures, label } = args;
  const gpu = ctx.kernels.gpu;
  const full = tileFor(gpu, "tn", out, inFeatures, rows);
  const chunks = weightGradChunks(gpu.report.fallback, full, rows, out, inFeatures);
  if (chunks <= 1) {
    return [
      await matmul(ctx.kernels, {
        a: dy,
        b: x,
        c: dw.ref,
        m: out,
        n: inFeatures,
        k: rows,
        layout: "tn",
        tile: full,
        accumulate: dw.accumulate,
        storage: { b: args.xStorage },
        label,
      }),
    ];
  }
  const chunk = rows / chunks;
  const size = out * inFeatures;
  const partial = ctx.temp(chunks * size, `${label} partial sums`);
  return [
    await matmul(ctx.kernels, {
      a: dy,
      b: x,
      c: partial,
      m: out,
      n: inFeatures,
      k: chunk,
      layout: "tn",
      tile: tileFor(gpu, "tn", out, inFeatures, chunk),
      batch: { count: chunks, strideA: chunk * out, strideB: chunk * inFeatures, strideC: size },
      storage: { b: args.xStorage },
      label: `${label} (${chunks} chunks of ${chunk} rows)`,
    }),
    await axisReduce(ctx.kernels, {
      x: partial,
      out: dw.ref,
      outer: 1,
      axis: chunks,
      inner: size,
      scale: 1,
      accumulate: dw.accumulate,
      label: `${label} Σ chunks`,
    }),
  ];
}
