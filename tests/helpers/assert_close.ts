/**
 * `assertClose`: elementwise `|actual − expected| ≤ atol + rtol·|expected|`, failing with the
 * largest error and the first mismatches. Each call's error statistics are appended as a JSON
 * line to the file named by the environment variable `KERNEL_REPORT`, when it is set, so the
 * error of every kernel at every tested size can be listed after a run.
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
