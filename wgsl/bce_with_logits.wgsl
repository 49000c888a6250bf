// Binary cross-entropy with logits, elementwise (shared/specs/algorithms.md §9.2): for logits x and
// targets y ∈ [0, 1], with pos_weight w (1 = plain BCE),
//   loss[i] = (1 − y)·x + (1 + (w − 1)·y)·(log(1 + e^{−|x|}) + max(−x, 0))
//           = (1 − y)·softplus(x) + w·y·softplus(−x)        (computed in this form: two terms ≥ 0,
//             no cancellation between x and softplus for large |x|)
//   grad[i] = grad_scale·∂loss/∂x = grad_scale·((1 − y)·σ(x) − w·y·σ(−x))
// (w = 1: σ(x) − y). Elements i ≥ valid_count get loss 0 and gradient 0.
//
// Entry point `main`, bindings (group 0):
//   0 logits: array<f32> (n)   1 targets: array<f32> (n)   2 loss: array<f32> (n)
//   3 grad: array<f32> (n, written only when WRITE_GRAD; a dummy is bound otherwise)
//   4 params: BceParams {n, valid_count, pos_weight, grad_scale}
// Override: WRITE_GRAD (false for evaluation).
// Dispatch: ceil(n / 256) workgroups of 256, split over x and y above 65535 (core/kernels.ts grid).

struct BceParams {
  n: u32,
  valid_count: u32,
  pos_weight: f32,
  grad_scale: f32,
}

override WRITE_GRAD: bool = true;

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<uniform> params: BceParams;

// log(1 + u) for u ∈ [0, 1] to a few ulp relative (WGSL has no log1p, and its log is only
// accurate to 2^-21 absolute near 1, which would swamp small losses):
// log(1 + u) = 2·atanh(s) = 2·(s + s³/3 + s⁵/5 + …) with s = u/(2 + u) ≤ 1/3; the terms after
// s¹⁵/15 are below 2e-9 relative.
fn log1p_unit(u: f32) -> f32 {
  let s = u / (2.0 + u);
  let s2 = s * s;
  let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 +
    s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0)))))));
  return 2.0 * s * series;
}

// softplus(t) = log(1 + e^t) = max(t, 0) + log(1 + e^{−|t|}).
fn softplus(t: f32) -> f32 {
  return max(t, 0.0) + log1p_unit(exp(-abs(t)));
}

// σ(t) without overflow for large |t|.
fn sigmoid(t: f32) -> f32 {
  if (t >= 0.0) {
    return 1.0 / (1.0 + exp(-t));
  }
  let e = exp(t);
  return e / (1.0 + e);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) {
    return;
  }
  if (i >= params.valid_count) {
    loss[i] = 0.0;
    if (WRITE_GRAD) {
      grad[i] = 0.0;
    }
    return;
  }
  let x = logits[i];
  let y = targets[i];
  let w = params.pos_weight;
  loss[i] = (1.0 - y) * softplus(x) + w * y * softplus(-x);
  if (WRITE_GRAD) {
    grad[i] = params.grad_scale * ((1.0 - y) * sigmoid(x) - w * y * sigmoid(-x));
  }
}
