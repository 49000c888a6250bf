/** Float64 reference of the CSV numeric scaling (datasets/csv_transform.ts), written apart. */

/** numpy.quantile with linear interpolation. */
function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const h = (s.length - 1) * q;
  const i = Math.floor(h);
  return i + 1 < s.length ? s[i]! + (h - i) * (s[i + 1]! - s[i]!) : s[i]!;
}

/** The fitted scaling of one column: log1p?, center, scale. */
export function fitColumnRef(values: number[]): { log: boolean; center: number; scale: number } {
  const n = values.length;
  const mean = values.reduce((a, v) => a + v, 0) / n;
  const m2 = values.reduce((a, v) => a + (v - mean) ** 2, 0) / n;
  const m3 = values.reduce((a, v) => a + (v - mean) ** 3, 0) / n;
  const log = Math.min(...values) >= 0 && m2 > 0 && m3 / m2 ** 1.5 > 2;
  const t = log ? values.map((v) => Math.log(1 + v)) : values;
  const iqr = quantile(t, 0.75) - quantile(t, 0.25);
  const tm = t.reduce((a, v) => a + v, 0) / n;
  const sd = Math.sqrt(t.reduce((a, v) => a + (v - tm) ** 2, 0) / n);
  const scale = iqr > 0 ? iqr / 1.349 : sd > 0 ? sd : 1;
  return { log, center: quantile(t, 0.5), scale };
}

/** A value through a fitted scaling, clipped to ±clip. */
export function scaleRef(
  v: number,
  fit: { log: boolean; center: number; scale: number },
  clip: number,
): number {
  const x = ((fit.log ? Math.log(1 + Math.max(0, v)) : v) - fit.center) / fit.scale;
  return Math.min(clip, Math.max(-clip, x));
}
