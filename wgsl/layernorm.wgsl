// LayerNorm over the last dimension C of X[M, C] (algorithms.md §9.4):
//   μ = mean(x), r = (mean((x − μ)²) + ε)^−½, x̂ = (x − μ)·r, y = γ⊙x̂ + β.
// The variance is taken in a second pass over x − μ (never E[x²] − μ²), corrected by mean(x − μ),
// so rows with a large common offset keep their accuracy in f32.
//
// Storage types (core/kernels.ts withStorage): X_T for x and y, P_T for gamma and beta, each f32
// or f16; statistics, gradients and all arithmetic are f32.
//
//   forward:         0 x: array<X_T> (M·C), 1 gamma (C), 2 beta (C), 3 y (M·C) written,
//                    4 mean_out (M) written, 5 rstd_out (M) written, 6 params {rows, cols, eps}
//   backward_input:  0 x (M·C), 1 gamma (C), 2 mean_in (M), 3 rstd_in (M), 4 dy (M·C),
//                    5 dx (M·C) written (ACCUMULATE: dx += ...), 6 params
//                    dx̂ = dy⊙γ, dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂⊙x̂))
//   backward_params: 0 x (M·C), 1 dgamma (C), 2 mean_in (M), 3 rstd_in (M), 4 dy (M·C),
//                    5 dbeta (C), 6 params; dγ = Σ_rows dy⊙x̂, dβ = Σ_rows dy
//                    (ACCUMULATE: += for micro-batch gradient accumulation)
//
// Dispatch geometry:
//   forward, backward_input: workgroups of 256 = THREADS_PER_ROW lanes × (256 / THREADS_PER_ROW)
//     rows; ceil(M / rows per workgroup) workgroups, split over x and y above 65535
//     (core/kernels.ts grid). Each row is reduced by its lanes through a shared-memory tree.
//   backward_params: workgroups of 16 columns × 16 row lanes; ceil(C / 16) workgroups (split over
//     x and y likewise). Each lane sums every 16th row of its column, then the 16 lanes are reduced
//     through shared memory: one writer per column, so no float atomics are needed.

struct LayernormParams {
  rows: u32,
  cols: u32,
  eps: f32,
}

// Lanes per row, a power of two in [1, 256]: wide rows want all 256, narrow rows share a
// workgroup so that most lanes are not idle.
override THREADS_PER_ROW: u32 = 256u;
// backward_input and backward_params: add into the output instead of overwriting it.
override ACCUMULATE: bool = false;

const GROUP: u32 = 256u;
const PARAM_COLS: u32 = 16u;
const PARAM_LANES: u32 = 16u;

alias X_T = f32;
alias P_T = f32;

@group(0) @binding(0) var<storage, read> x: array<X_T>;
@group(0) @binding(1) var<storage, read> gamma: array<P_T>;
@group(0) @binding(2) var<storage, read> beta: array<P_T>;
@group(0) @binding(3) var<storage, read_write> y: array<X_T>;
@group(0) @binding(4) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(6) var<uniform> params: LayernormParams;

@group(0) @binding(1) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(2) var<storage, read> mean_in: array<f32>;
@group(0) @binding(3) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbeta: array<f32>;

var<workgroup> red: array<f32, GROUP>;
var<workgroup> red2: array<vec2<f32>, GROUP>;

// Sum of `value` over the THREADS_PER_ROW lanes of one row (slots base .. base + THREADS_PER_ROW).
// Must be reached by every invocation of the workgroup.
fn row_sum(lane: u32, base: u32, value: f32) -> f32 {
  red[base + lane] = value;
  workgroupBarrier();
  for (var s = THREADS_PER_ROW / 2u; s > 0u; s = s / 2u) {
    if (lane < s) {
      red[base + lane] = red[base + lane] + red[base + lane + s];
    }
    workgroupBarrier();
  }
  let total = red[base];
  // The next call overwrites the slots: everyone must have read the total first.
  workgroupBarrier();
  return total;
}

// row_sum for two values at once.
fn row_sum2(lane: u32, base: u32, value: vec2<f32>) -> vec2<f32> {
  red2[base + lane] = value;
  workgroupBarrier();
  for (var s = THREADS_PER_ROW / 2u; s > 0u; s = s / 2u) {
    if (lane < s) {
      red2[base + lane] = red2[base + lane] + red2[base + lane + s];
    }
    workgroupBarrier();
  }
  let total = red2[base];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(THREADS_PER_ROW, GROUP / THREADS_PER_ROW)
fn forward(
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let row = (wid.x + wid.y * nwg.x) * (GROUP / THREADS_PER_ROW) + lid.y;
  let lane = lid.x;
  let base = lid.y * THREADS_PER_ROW;
  let cols = params.cols;
  // Rows past the end still take part in the reductions (barriers), contributing zeros.
  let live = row < params.rows;
  let start = row * cols;

  var s = 0.0;
  if (live) {
    for (var j = lane; j < cols; j += THREADS_PER_ROW) {
      s += f32(x[start + j]);
    }
  }
  let mu = row_sum(lane, base, s) / f32(cols);

  // Second pass over d = x − μ (exact in f32 when x is near μ). μ itself carries the rounding of
  // a sum of C values; mean(d) measures that error, and subtracting it (the corrected two-pass
  // algorithm) keeps x̂ accurate even when |μ| ≫ σ.
  var dq = vec2<f32>(0.0, 0.0); // Σ d, Σ d²
  if (live) {
    for (var j = lane; j < cols; j += THREADS_PER_ROW) {
      let d = f32(x[start + j]) - mu;
      dq += vec2<f32>(d, d * d);
    }
  }
  let moments = row_sum2(lane, base, dq) / f32(cols);
  let c = moments.x;
  let r = 1.0 / sqrt(max(moments.y - c * c, 0.0) + params.eps);

  if (live) {
    for (var j = lane; j < cols; j += THREADS_PER_ROW) {
      y[start + j] = X_T(f32(gamma[j]) * ((f32(x[start + j]) - mu - c) * r) + f32(beta[j]));
    }
    if (lane == 0u) {
      mean_out[row] = mu + c;
      rstd_out[row] = r;
    }
  }
}

@compute @workgroup_size(THREADS_PER_ROW, GROUP / THREADS_PER_ROW)
fn backward_input(
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let row = (wid.x + wid.y * nwg.x) * (GROUP / THREADS_PER_ROW) + lid.y;
  let lane = lid.x;
  let base = lid.y * THREADS_PER_ROW;
  let cols = params.cols;
  let live = row < params.rows;
  let start = row * cols;

  var mu = 0.0;
  var r = 0.0;
  var sums = vec2<f32>(0.0, 0.0); // Σ dx̂, Σ dx̂⊙x̂
  if (live) {
    mu = mean_in[row];
    r = rstd_in[row];
    for (var j = lane; j < cols; j += THREADS_PER_ROW) {
      let g = dy[start + j] * f32(gamma[j]);
      sums += vec2<f32>(g, g * ((f32(x[start + j]) - mu) * r));
    }
  }
  let means = row_sum2(lane, base, sums) / f32(cols);

  if (live) {
    for (var j = lane; j < cols; j += THREADS_PER_ROW) {
      let i = start + j;
      let xhat = (f32(x[i]) - mu) * r;
      let v = r * (dy[i] * f32(gamma[j]) - means.x - xhat * means.y);
      if (ACCUMULATE) {
        dx[i] = dx[i] + v;
      } else {
        dx[i] = v;
      }
    }
  }
}

@compute @workgroup_size(PARAM_COLS, PARAM_LANES)
fn backward_params(
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let col = (wid.x + wid.y * nwg.x) * PARAM_COLS + lid.x;
  let cols = params.cols;
  let live = col < cols;

  // Neighbouring lanes read neighbouring columns of one row: 64-byte contiguous segments.
  var sums = vec2<f32>(0.0, 0.0); // Σ dy⊙x̂, Σ dy
  if (live) {
    for (var row = lid.y; row < params.rows; row += PARAM_LANES) {
      let i = row * cols + col;
      let g = dy[i];
      sums += vec2<f32>(g * ((f32(x[i]) - mean_in[row]) * rstd_in[row]), g);
    }
  }
  let slot = lid.y * PARAM_COLS + lid.x;
  red2[slot] = sums;
  workgroupBarrier();
  for (var s = PARAM_LANES / 2u; s > 0u; s = s / 2u) {
    if (lid.y < s) {
      red2[slot] = red2[slot] + red2[slot + s * PARAM_COLS];
    }
    workgroupBarrier();
  }
  if (live && lid.y == 0u) {
    let total = red2[lid.x];
    if (ACCUMULATE) {
      dgamma[col] = dgamma[col] + total.x;
      dbeta[col] = dbeta[col] + total.y;
    } else {
      dgamma[col] = total.x;
      dbeta[col] = total.y;
    }
  }
}
