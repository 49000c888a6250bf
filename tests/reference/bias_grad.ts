/** Float64 reference of `wgsl/bias_grad.wgsl`, and the broadcast bias add it differentiates. */

/** y[i, j] = x[i, j] + b[j] over a row-major [m, n]: the forward whose bias gradient is below. */
export function biasAddRef(
  x: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  n: number,
): Float64Array {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) y[i * n + j] = x[i * n + j]! + b[j]!;
  }
  return y;
}

/** db[j] = Σ_i dy[i, j] over a row-major [m, n], plus `dbIn[j]` when accumulating. */
export function biasGradRef(
  dy: ArrayLike<number>,
  m: number,
  n: number,
  dbIn?: ArrayLike<number>,
): Float64Array {
  const db = new Float64Array(n);
  for (let j = 0; j < n; j++) db[j] = dbIn ? dbIn[j]! : 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) db[j]! += dy[i * n + j]!;
  }
  return db;
}

/** max_j Σ_i |dy[i, j]| (+ |dbIn[j]|): the scale of the rounding-error bound of a column sum. */
export function maxAbsColumnSum(
  dy: ArrayLike<number>,
  m: number,
  n: number,
  dbIn?: ArrayLike<number>,
): number {
  const abs = biasGradRef(Array.from(dy, Math.abs), m, n, dbIn && Array.from(dbIn, Math.abs));
  return abs.reduce((a, b) => Math.max(a, b), 0);
}
