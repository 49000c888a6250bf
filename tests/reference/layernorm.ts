/** Float64 references of `wgsl/layernorm.wgsl` (algorithms.md §9.4), over rows of X[rows, cols]. */

/** What the forward pass returns and saves. */
export interface LayernormForwardRef {
  y: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}

/** μ = mean(x), r = (mean((x − μ)²) + ε)^−½, y = γ⊙(x − μ)·r + β, per row. */
export function layernormForwardRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  rows: number,
  cols: number,
  eps: number,
): LayernormForwardRef {
  const y = new Float64Array(rows * cols);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let m = 0; m < rows; m++) {
    const o = m * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += x[o + j]!;
    const mu = s / cols;
    let q = 0;
    for (let j = 0; j < cols; j++) q += (x[o + j]! - mu) ** 2;
    const r = 1 / Math.sqrt(q / cols + eps);
    for (let j = 0; j < cols; j++) y[o + j] = gamma[j]! * (x[o + j]! - mu) * r + beta[j]!;
    mean[m] = mu;
    rstd[m] = r;
  }
  return { y, mean, rstd };
}

/** Gradients of a scalar loss with respect to x, γ and β, given dy = ∂L/∂y. */
export interface LayernormBackwardRef {
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

/**
 * dx̂ = dy⊙γ, dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂⊙x̂)), dγ = Σ_rows dy⊙x̂, dβ = Σ_rows dy, with μ
 * and r recomputed from x in float64.
 */
export function layernormBackwardRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  dy: ArrayLike<number>,
  rows: number,
  cols: number,
  eps: number,
): LayernormBackwardRef {
  const { mean, rstd } = layernormForwardRef(
    x,
    gamma,
    new Float64Array(cols),
    rows,
    cols,
    eps,
  );
  const dx = new Float64Array(rows * cols);
  const dgamma = new Float64Array(cols);
  const dbeta = new Float64Array(cols);
  for (let m = 0; m < rows; m++) {
    const o = m * cols;
    const mu = mean[m]!;
    const r = rstd[m]!;
    let a = 0;
    let b = 0;
    for (let j = 0; j < cols; j++) {
      const xhat = (x[o + j]! - mu) * r;
      const g = dy[o + j]! * gamma[j]!;
      a += g;
      b += g * xhat;
      dgamma[j] = dgamma[j]! + dy[o + j]! * xhat;
      dbeta[j] = dbeta[j]! + dy[o + j]!;
    }
    a /= cols;
    b /= cols;
    for (let j = 0; j < cols; j++) {
      const xhat = (x[o + j]! - mu) * r;
      dx[o + j] = r * (dy[o + j]! * gamma[j]! - a - xhat * b);
    }
  }
  return { dx, dgamma, dbeta };
}
