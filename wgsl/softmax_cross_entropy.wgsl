// Softmax cross-entropy with label smoothing, accuracy and the logits' gradient in one pass per row
// (shared/specs/algorithms.md §9.1). For logits Z[B, K] (row-major) and labels y[B] < K:
//   p = softmax(z_r),  q_k = (1 − ε)·[k = y_r] + ε/K,  loss[r] = −Σ_k q_k log p_k
//   correct[r] = 1.0 if argmax_k z_rk = y_r else 0.0 (ties go to the lowest index), as f32 so that
//                a float reduction of `correct` counts the hits
//   grad[r, k] = (p_k − q_k)·grad_scale   (grad_scale = 1/B for a mean over the batch)
// MIXUP: a second label y2[r] and λ = mix[0] (a storage buffer: λ is drawn on the GPU) make the
// target λ·q(y1) + (1 − λ)·q(y2): loss λ·L(y1) + (1 − λ)·L(y2), gradient p − (λq¹ + (1 − λ)q²).
// `correct` then compares the argmax with y1, the label of the larger share when λ ≥ 0.5.
// Rows r ≥ valid_rows (the padding of a last partial batch) get loss 0, correct 0, gradient 0.
// A label ≥ K makes that row's loss and gradient NaN, so a data bug shows in the loss curve.
// K = 1 is allowed: p = q = 1, so loss and gradient are 0 and correct is 1 when y = 0.
//
// Entry point `main`, bindings (group 0):
//   0 logits: array<L_T> (B·K)     1 labels: array<u32> (B)      2 labels2: array<u32> (B, MIXUP)
//   3 mix: array<f32> (≥ 1, MIXUP) 4 loss: array<f32> (B)        5 correct: array<f32> (B)
//   6 grad: array<f32> (B·K, written only when WRITE_GRAD)       7 params: SceParams
// L_T, the logits' storage type, is f32 or f16 (core/kernels.ts withStorage); the rest is f32.
// Bindings 2, 3 and 6 are always bound (auto layouts need every binding); unused ones take dummies.
// Overrides: WG threads per row (a power of two ≤ 256), MIXUP, WRITE_GRAD (false for evaluation).
// Dispatch: one workgroup of WG threads per row, B workgroups split over x and y above 65535
// (core/kernels.ts grid(B, 1)); the row is wid.x + wid.y·num_workgroups.x.
//
// Each thread scans columns lid, lid + WG, … keeping an online softmax state (running max m, the
// sum of exp(z − m) over its other columns, Σ (z − m), count, argmax); a tree reduction merges the
// states, so the logits are read once for the statistics and once more for the gradient.
// Accuracy: S = 1 + rest, and log S = log1p(rest) keeps the tiny loss of a confident, correct row
// that forming S in f32 would round away; (1/K)·Σ_k (lse − z_k) = log S − Σ (z − M)/K adds two
// non-negative terms, so the smoothing term has no cancellation even for logits of ±80.

struct SceParams {
  rows: u32,
  classes: u32,
  valid_rows: u32,
  label_smoothing: f32,
  grad_scale: f32,
}

override WG: u32 = 256u;
override MIXUP: bool = false;
override WRITE_GRAD: bool = true;

alias L_T = f32;

@group(0) @binding(0) var<storage, read> logits: array<L_T>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> labels2: array<u32>;
@group(0) @binding(3) var<storage, read> mix: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> correct: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad: array<f32>;
@group(0) @binding(7) var<uniform> params: SceParams;

// The online softmax state of each thread, merged pairwise. Sized 256 (the largest WG) because
// override-sized workgroup arrays are not supported everywhere.
var<workgroup> red_max: array<f32, 256>;
var<workgroup> red_rest: array<f32, 256>;
var<workgroup> red_sum_diff: array<f32, 256>;
var<workgroup> red_count: array<u32, 256>;
var<workgroup> red_arg: array<u32, 256>;

// log(1 + u) for |u| ≤ 1 to a few ulp relative: WGSL's log is only accurate to 2^-21 absolute
// near 1, which would swamp the small loss of a confident, correct row (S = Σ exp(z − M) ≈ 1).
// log(1 + u) = 2·atanh(s) = 2·(s + s³/3 + …) with s = u/(2 + u) ≤ 1/3; later terms < 2e-9 relative.
fn log1p_unit(u: f32) -> f32 {
  let s = u / (2.0 + u);
  let s2 = s * s;
  let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 +
    s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0)))))));
  return 2.0 * s * series;
}

// Merges the state of thread `b` into thread `a`. States with no columns are skipped, so their
// placeholder max never enters a subtraction.
fn merge(a: u32, b: u32) {
  let cb = red_count[b];
  if (cb == 0u) {
    return;
  }
  let ca = red_count[a];
  let mb = red_max[b];
  if (ca == 0u) {
    red_max[a] = mb;
    red_rest[a] = red_rest[b];
    red_sum_diff[a] = red_sum_diff[b];
    red_count[a] = cb;
    red_arg[a] = red_arg[b];
    return;
  }
  let ma = red_max[a];
  let m = max(ma, mb);
  // The smaller maximum joins the rest of the larger one's state (ties: both count as 1).
  if (ma >= mb) {
    red_rest[a] = red_rest[a] + (red_rest[b] + 1.0) * exp(mb - ma);
  } else {
    red_rest[a] = red_rest[b] + (red_rest[a] + 1.0) * exp(ma - mb);
  }
  red_sum_diff[a] = red_sum_diff[a] - f32(ca) * (m - ma) + red_sum_diff[b] - f32(cb) * (m - mb);
  red_count[a] = ca + cb;
  if (mb > ma || (mb == ma && red_arg[b] < red_arg[a])) {
    red_arg[a] = red_arg[b];
  }
  red_max[a] = m;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) {
    return;
  }
  let classes = params.classes;
  let base = row * classes;

  if (row >= params.valid_rows) {
    if (lid == 0u) {
      loss[row] = 0.0;
      correct[row] = 0.0;
    }
    if (WRITE_GRAD) {
      for (var k = lid; k < classes; k += WG) {
        grad[base + k] = 0.0;
      }
    }
    return;
  }

  // Online softmax over this thread's columns; `z > m` (strict) keeps the lowest index on ties.
  var m = 0.0;
  var rest = 0.0;
  var sum_diff = 0.0;
  var count = 0u;
  var arg = 0u;
  if (lid < classes) {
    m = f32(logits[base + lid]);
    count = 1u;
    arg = lid;
  }
  for (var k = lid + WG; k < classes; k += WG) {
    let z = f32(logits[base + k]);
    if (z > m) {
      rest = (rest + 1.0) * exp(m - z);
      sum_diff = sum_diff - f32(count) * (z - m);
      m = z;
      arg = k;
    } else {
      rest = rest + exp(z - m);
      sum_diff = sum_diff + (z - m);
    }
    count = count + 1u;
  }
  red_max[lid] = m;
  red_rest[lid] = rest;
  red_sum_diff[lid] = sum_diff;
  red_count[lid] = count;
  red_arg[lid] = arg;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      merge(lid, lid + stride);
    }
    workgroupBarrier();
  }
  let row_max = red_max[0];
  let rest_exp = red_rest[0];
  // log S = log(1 + rest): exact-to-ulp for a confident row, where S − 1 would round away.
  let log_sum = select(log(1.0 + rest_exp), log1p_unit(rest_exp), rest_exp < 1.0);
  let sum_below_max = red_sum_diff[0];
  let argmax = red_arg[0];

  let eps = params.label_smoothing;
  let y1 = labels[row];
  var y2 = y1;
  var lambda = 1.0;
  if (MIXUP) {
    y2 = labels2[row];
    lambda = mix[0];
  }
  // A runtime NaN (a constant one would be folded and rejected by the WGSL compiler).
  let bad = y1 >= classes || y2 >= classes;
  let nan = bitcast<f32>(0x7fc00000u | (classes & 0u));

  if (lid == 0u) {
    // lse − z_y = (M − z_y) + log S: both terms ≥ 0.
    var hard = row_max - f32(logits[base + min(y1, classes - 1u)]) + log_sum;
    if (MIXUP) {
      let hard2 = row_max - f32(logits[base + min(y2, classes - 1u)]) + log_sum;
      hard = lambda * hard + (1.0 - lambda) * hard2;
    }
    // (1/K)·Σ_k (lse − z_k) = log S − Σ (z − M)/K.
    let smoothed = log_sum - sum_below_max / f32(classes);
    loss[row] = select((1.0 - eps) * hard + eps * smoothed, nan, bad);
    correct[row] = select(0.0, 1.0, argmax == y1 && !bad);
  }

  if (WRITE_GRAD) {
    let inv_sum = 1.0 / (1.0 + rest_exp);
    let q_smooth = eps / f32(classes);
    let q1 = (1.0 - eps) * lambda;
    let q2 = (1.0 - eps) * (1.0 - lambda);
    let scale = select(params.grad_scale, nan, bad);
    for (var k = lid; k < classes; k += WG) {
      let p = exp(f32(logits[base + k]) - row_max) * inv_sum;
      var q = q_smooth;
      if (k == y1) {
        q = q + q1;
      }
      if (MIXUP && k == y2) {
        q = q + q2;
      }
      grad[base + k] = (p - q) * scale;
    }
  }
}
