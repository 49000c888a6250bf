// Losses against the batch's integer labels, with accuracy and the predictions' gradient in one
// pass per row (the softmax cross-entropy has its own kernel, wgsl/softmax_cross_entropy.wgsl):
//   bce: binary cross-entropy with logits z[r] (one per row) and labels y[r] ∈ {0, 1}:
//          loss[r] = max(z, 0) − z·t + log1p(exp(−|z|)),  t = y (MIXUP: λ·y1 + (1 − λ)·y2)
//          grad[r] = (σ(z) − t)·grad_scale,  correct[r] = [(z > 0) = (y1 = 1)]
//   mse: mean squared error of predictions p[r, 0..K) against one-hot(y) (MIXUP: λ·e_y1 +
//          (1 − λ)·e_y2):  loss[r] = (1/K)·Σ_k (p_k − t_k)²,  grad[r, k] = (2/K)(p_k − t_k)·grad_scale,
//          correct[r] = [argmax_k p_k = y1] (ties to the lowest index)
// A label outside the classes (≥ 2 for bce, ≥ K for mse) makes the row's loss NaN, so a data bug
// shows in the loss curve. Rows r ≥ valid_rows get loss 0, correct 0 and gradient 0.
//
// Entry points `bce` and `mse`, bindings (group 0):
//   0 preds: array<L_T> (rows·K)   1 labels: array<u32> (rows)   2 labels2: array<u32> (rows)
//   3 mix: array<f32> (≥ 1)        4 loss: array<f32> (rows)     5 correct: array<f32> (rows)
//   6 grad: array<f32> (rows·K)    7 params {rows, classes, valid_rows, grad_scale}
// L_T is f32 or f16 (core/kernels.ts withStorage); the rest is f32. Overrides: MIXUP, WRITE_GRAD
// (false for evaluation: grad is not written). Unused bindings take aliases or dummies.
// Dispatch: one invocation per row, ceil(rows / 64) workgroups of 64 split over x and y above
// 65535 (core/kernels.ts grid).

alias L_T = f32;

struct LossParams {
  rows: u32,
  classes: u32,
  valid_rows: u32,
  grad_scale: f32,
}

override MIXUP: bool = false;
override WRITE_GRAD: bool = true;

@group(0) @binding(0) var<storage, read> preds: array<L_T>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> labels2: array<u32>;
@group(0) @binding(3) var<storage, read> mix: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> correct: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad: array<f32>;
@group(0) @binding(7) var<uniform> params: LossParams;

fn row_of(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// The row's target share of label value `y` for a row with labels (y1, y2).
fn share_of(y: u32, y1: u32, y2: u32) -> f32 {
  var t = select(0.0, 1.0, y == y1);
  if (MIXUP) {
    let lambda = mix[0];
    t = lambda * t + (1.0 - lambda) * select(0.0, 1.0, y == y2);
  }
  return t;
}

@compute @workgroup_size(64)
fn bce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = row_of(gid, nwg);
  if (r >= params.rows) {
    return;
  }
  if (r >= params.valid_rows) {
    loss[r] = 0.0;
    correct[r] = 0.0;
    if (WRITE_GRAD) {
      grad[r] = 0.0;
    }
    return;
  }
  let z = f32(preds[r]);
  let y1 = labels[r];
  var y2 = y1;
  if (MIXUP) {
    y2 = labels2[r];
  }
  let t = share_of(1u, y1, y2);
  let nan = select(0.0, bitcast<f32>(0x7fc00000u), y1 > 1u || y2 > 1u);
  loss[r] = max(z, 0.0) - z * t + log(1.0 + exp(-abs(z))) + nan;
  correct[r] = select(0.0, 1.0, (z > 0.0) == (y1 == 1u));
  if (WRITE_GRAD) {
    // σ(z) without overflow for either sign.
    let e = exp(-abs(z));
    let sigma = select(e / (1.0 + e), 1.0 / (1.0 + e), z >= 0.0);
    grad[r] = (sigma - t + nan) * params.grad_scale;
  }
}

@compute @workgroup_size(64)
fn mse(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = row_of(gid, nwg);
  if (r >= params.rows) {
    return;
  }
  let k = params.classes;
  if (r >= params.valid_rows) {
    loss[r] = 0.0;
    correct[r] = 0.0;
    if (WRITE_GRAD) {
      for (var j = 0u; j < k; j++) {
        grad[r * k + j] = 0.0;
      }
    }
    return;
  }
  let y1 = labels[r];
  var y2 = y1;
  if (MIXUP) {
    y2 = labels2[r];
  }
  var sum = 0.0;
  var best = 0u;
  var best_value = f32(preds[r * k]);
  for (var j = 0u; j < k; j++) {
    let p = f32(preds[r * k + j]);
    let d = p - share_of(j, y1, y2);
    sum = fma(d, d, sum);
    if (p > best_value) {
      best = j;
      best_value = p;
    }
  }
  let nan = select(0.0, bitcast<f32>(0x7fc00000u), y1 >= k || y2 >= k);
  loss[r] = sum / f32(k) + nan;
  correct[r] = select(0.0, 1.0, best == y1);
  if (WRITE_GRAD) {
    let scale = 2.0 / f32(k) * params.grad_scale;
    for (var j = 0u; j < k; j++) {
      grad[r * k + j] = (f32(preds[r * k + j]) - share_of(j, y1, y2) + nan) * scale;
    }
  }
}
