// The per-element update of an optimizer defined with `defineOptimizer` (core/train/define_optimizer.ts):
// everything but the update rule itself. The framework fills the marked lines: //!hyper (the
// `Hyper` struct of the optimizer's hyperparameters, and ln of each), //!slots (a storage binding
// per state slot), //!load (the slots read into `var`s), //!update (the user's WGSL statements),
// //!store (the slots written back).
//
// Per element i of the flat buffers (its segment found by binary search; padding and elements in
// no segment are left alone), the user's statements see:
//   p      the parameter (var; its new value is stored)     g   the gradient, already scaled and
//   lr     this step's lr × the segment's multiplier            clipped (var)
//   t      the step number, 1-based, as f32                 wd  the segment's weight decay
//   hyper  the hyperparameters (hyper.beta1, …) and ln of each (hyper.log_beta1, …)
//   each state slot by name (var; stored back)
//   one_minus_pow(log_beta, t) = 1 − βᵗ without cancellation (bias corrections)
// Weight decay is applied before the statements: decoupled (p ← p·(1 − lr·wd), AdamW), coupled
// (g ← g + wd·p, Adam/SGD) or not at all, as the optimizer declares.
//
// Bindings (group 0): 0 params rw, 1 grads, 2 segments, 3 counters, 4 lr_table, 5 grad_norm,
// 6 setup {n, num_segments, max_norm, grad_scale}, 7 hyper, 8… one per state slot (rw).
// Dispatch: ceil(n / 256) workgroups of 256 split over x and y above 65535 (core/kernels.ts grid).

struct Common {
  n: u32,
  num_segments: u32,
  max_norm: f32,
  grad_scale: f32,
}

struct Segment {
  start: u32,
  end: u32,
  lr_mult: f32,
  weight_decay: f32,
}

//!hyper

override DECAY: u32 = 0u; // 0 none, 1 coupled, 2 decoupled

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read> segments: array<Segment>;
@group(0) @binding(3) var<storage, read> counters: array<u32>;
@group(0) @binding(4) var<storage, read> lr_table: array<f32>;
@group(0) @binding(5) var<storage, read> grad_norm: array<f32>;
@group(0) @binding(6) var<uniform> setup: Common;
@group(0) @binding(7) var<uniform> hyper: Hyper;
//!slots

//!include optimizer


@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= setup.n) {
    return;
  }
  let s = find_segment(i, setup.num_segments);
  if (s < 0) {
    return;
  }
  let seg = segments[s];
  let lr = lr_table[min(counters[0], arrayLength(&lr_table) - 1u)] * seg.lr_mult;
  let wd = seg.weight_decay;
  let t = f32(counters[0] + 1u);
  var p = params[i];
  var g = grads[i] * gradient_factor(setup.grad_scale, setup.max_norm);
  if (DECAY == 1u) {
    g = g + wd * p;
  } else if (DECAY == 2u) {
    p = p * (1.0 - lr * wd);
  }
//!load
  {
//!update
  }
//!store
  params[i] = p;
}
