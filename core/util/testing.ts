/**
 * Test helpers for kernels and plugins. `assertClose` compares results elementwise with a
 * float64 reference (`|actual − expected| ≤ atol + rtol·|expected|`), failing with the largest
 * error and the first mismatches; when the environment variable `KERNEL_REPORT` names a file,
 * each comparison's error statistics are appended to it as a JSON line. `numericGradient` takes
 * central finite differences in float64, to check a reference backward pass.
 *
 * @module
 */

/** Tolerances and a label that names the kernel and size in failure messages. */
export interface CloseOptions {
  atol: number;
  rtol: number;
  label: string;
}

/** Error statistics of one comparison. */
export interface CloseStats {
  label: string;
  count: number;
  maxAbs: number;
  /** Largest |a − e| / |e| over elements with |e| ≥ 1e-3·max|e| (small references excluded). */
  maxRel: number;
}

/** Asserts that `actual` is elementwise close to `expected`; returns the error statistics. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol, rtol, label }: CloseOptions,
): CloseStats {
  if (actual.length !== expected.length) {
    throw new Error(`${label}: length ${actual.length} differs from expected ${expected.length}`);
  }
  let maxAbs = 0;
  let maxRel = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  const mismatches: string[] = [];
  let bad = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const diff = Math.abs(a - e);
    const ok = Number.isFinite(a) === Number.isFinite(e) &&
      (Number.isFinite(e) ? diff <= atol + rtol * Math.abs(e) : Object.is(a, e));
    if (Number.isNaN(diff)) maxAbs = Number.NaN;
    else if (!Number.isNaN(maxAbs)) maxAbs = Math.max(maxAbs, diff);
    if (Math.abs(e) >= 1e-3 * scale && e !== 0 && Number.isFinite(diff)) {
      maxRel = Math.max(maxRel, diff / Math.abs(e));
    }
    if (!ok) {
      bad++;
      if (mismatches.length < 5) mismatches.push(`[${i}] got ${a}, expected ${e} (|diff| ${diff})`);
    }
  }
  const stats: CloseStats = { label, count: expected.length, maxAbs, maxRel };
  const report = Deno.env.get("KERNEL_REPORT");
  if (report) Deno.writeTextFileSync(report, JSON.stringify(stats) + "\n", { append: true });
  if (bad > 0) {
    throw new Error(
      `${label}: ${bad} of ${expected.length} values differ beyond atol ${atol} + rtol ${rtol}·|ref|; ` +
        `max |diff| ${maxAbs}, max rel ${maxRel}\n  ${mismatches.join("\n  ")}`,
    );
  }
  return stats;
}

/**
 * The gradient of the scalar `f` at `x` by central differences with step `h`, each coordinate
 * perturbed in turn (x is restored afterwards).
 */
export function numericGradient(
  f: (x: Float64Array) => number,
  x: Float64Array,
  h = 1e-6,
): Float64Array {
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const saved = x[i]!;
    x[i] = saved + h;
    const plus = f(x);
    x[i] = saved - h;
    const minus = f(x);
    x[i] = saved;
    grad[i] = (plus - minus) / (2 * h);
  }
  return grad;
}

/** Σ_i w_i·y_i: turns a vector-valued function into the scalar whose gradient is the VJP with w. */
export function dot(w: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i]! * y[i]!;
  return s;
}
