/**
 * Float64 reference of `wgsl/matmul.wgsl`: what the kernel means, in plain loops.
 *   pre[i,j] = alpha · Σ_k op(A)[i,k]·op(B)[k,j] + bias[j]
 *   C[i,j]   = act(pre[i,j])            or, accumulating, C0[i,j] + act(pre[i,j])
 * act is the float64 activation of tests/reference/activation.ts (exact GELU).
 */

import type { Activation } from "../../core/ops/activation_ids.ts";
import type { MatmulLayout } from "../../core/ops/matmul.ts";
import { activationRef } from "./activation.ts";

/** The epilogue of {@link matmulRef}. */
export interface MatmulRefOptions {
  bias?: ArrayLike<number>;
  activation?: Activation;
  alpha?: number;
  /** C's values before an accumulating run. */
  c0?: ArrayLike<number>;
}

/** C and the pre-activation for `layout` (row-major A, B as the kernel reads them). */
export function matmulRef(
  layout: MatmulLayout,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  n: number,
  k: number,
  options: MatmulRefOptions = {},
): { c: Float64Array; pre: Float64Array } {
  const alpha = options.alpha ?? 1;
  const act = options.activation ?? "identity";
  const opA = (i: number, p: number) => layout === "tn" ? a[p * m + i]! : a[i * k + p]!;
  const opB = (p: number, j: number) => layout === "nt" ? b[j * k + p]! : b[p * n + j]!;
  const c = new Float64Array(m * n);
  const pre = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += opA(i, p) * opB(p, j);
      const v = alpha * sum + (options.bias ? options.bias[j]! : 0);
      pre[i * n + j] = v;
      c[i * n + j] = (options.c0 ? options.c0[i * n + j]! : 0) + activationRef(act, v);
    }
  }
  return { c, pre };
}
