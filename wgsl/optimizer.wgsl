// Fused optimizer updates over ONE flat parameter buffer: SGD (momentum, dampening, Nesterov) and
// LAMB, each with global-norm gradient clipping, a gradient scale and a per-segment lr multiplier
// and weight decay, plus the step counter every optimizer reads. The elementwise optimizers
// written with defineOptimizer (Adam, AdamW, LION, …) are generated from optimizer_template.wgsl.
//
// Every per-step value comes from GPU buffers, so several steps can be encoded in one submission:
//   counters[0]  optimizer steps already taken; t = counters[0] + 1 is the current step.
//   lr_table[k]  the learning rate of step k (the schedule, precomputed once); index clamped to
//                the last entry when the run goes past the table.
//   grad_norm[0] Σg² over all UNSCALED gradients (written earlier in the same command buffer).
// The effective gradient is g = grads[i]·grad_scale·c with the clip factor
//   c = min(1, max_norm / (sqrt(Σg²·grad_scale²) + 1e-6)) when max_norm > 0, else 1
// (torch.nn.utils.clip_grad_norm_ on the scaled gradient). The lr of element i is
// lr_table[counters[0]]·lr_mult of its segment.
//
// Segments: segments[s] = {start, end, lr_mult, weight_decay}, sorted, non-overlapping, element
// offsets [start, end). Element i finds its segment by binary search (≤ a few hundred segments:
// ~8 reads that stay in cache, cheaper than a (segment, chunk) dispatch table and independent of
// segment sizes). Elements in no segment are left untouched (parameters and state).
//
// Bias corrections 1 − βᵗ = −expm1(t·ln β) use ln β precomputed on the CPU in float64: the f32
// `1 − pow(β, t)` loses ~1e-5 relative for β2 = 0.999 at small t.
//
// Entry points and bindings (group 0), all over n elements unless noted; `opt` is OptimParams:
//   sgd:           0 params rw, 1 grads, 2 segments (S), 3 counters, 4 lr_table, 5 grad_norm,
//                  6 opt, 7 m rw (momentum buffer; untouched when momentum = 0)
//   lamb_moments:  0 params, 1 grads, 2 segments, 3 counters, 4 update rw (raw LAMB update
//                  r = m̂/(sqrt(v̂)+eps) + λθ; 0 outside segments), 5 grad_norm, 6 opt, 7 m rw, 8 v rw
//   segment_sumsq: 0 a, 1 b, 2 segments, 3 out rw (2·S: out[s] = Σ_seg a², out[S + s] = Σ_seg b²),
//                  4 opt. Simple: one workgroup of 256 per segment. The planar layout is what two
//                  runs of the shared segmented reduce (wgsl/reduce.wgsl, SQUARE, out_offset 0 and
//                  S) write, so the engine may use that instead.
//   lamb_apply:    0 params rw, 1 update, 2 segments, 3 counters, 4 lr_table, 5 seg_norms (2·S:
//                  [s] = Σθ², [S + s] = Σr², as segment_sumsq writes for a = params, b = update),
//                  6 opt;
//                  θ ← θ − lr·trust·r, trust = ‖θ‖/‖r‖ per segment (1 when either is 0), applied
//                  only when the segment's λ ≠ 0 or override ALWAYS_ADAPT (timm's Lamb);
//                  override TRUST_CLIP caps trust at 1 (LAMBC).
//   advance_step:  0 counters rw; one invocation, counters[0] += 1 (encoded last in a step).
// Dispatch: the elementwise entries use ceil(n / 256) workgroups of 256 split over x and y above
// 65535 (core/kernels.ts grid); segment_sumsq uses S workgroups (grid(S, 1)); advance_step 1.

struct OptimParams {
  n: u32,
  num_segments: u32,
  nesterov: u32,
  _pad0: u32,
  beta1: f32,
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,
  log_beta1: f32,
  log_beta2: f32,
  eps: f32,
  momentum: f32,
  one_minus_dampening: f32,
  max_norm: f32,
  grad_scale: f32,
  _pad1: f32,
}

struct Segment {
  start: u32,
  end: u32,
  lr_mult: f32,
  weight_decay: f32,
}

override ALWAYS_ADAPT: bool = false;
override TRUST_CLIP: bool = false;

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read> segments: array<Segment>;
@group(0) @binding(3) var<storage, read> counters: array<u32>;
@group(0) @binding(4) var<storage, read> lr_table: array<f32>;
@group(0) @binding(5) var<storage, read> grad_norm: array<f32>;
@group(0) @binding(6) var<uniform> opt: OptimParams;
@group(0) @binding(7) var<storage, read_write> m: array<f32>;
@group(0) @binding(8) var<storage, read_write> v: array<f32>;

// Bindings that reuse numbers of the ones above in entries that do not use those.
@group(0) @binding(4) var<storage, read_write> lamb_update_out: array<f32>;
@group(0) @binding(1) var<storage, read> lamb_update_in: array<f32>;
@group(0) @binding(5) var<storage, read> seg_norms: array<f32>;
@group(0) @binding(0) var<storage, read> sumsq_a: array<f32>;
@group(0) @binding(1) var<storage, read> sumsq_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> sumsq_out: array<f32>;
@group(0) @binding(4) var<uniform> sumsq_opt: OptimParams;
@group(0) @binding(0) var<storage, read_write> step_counters: array<u32>;

//!include optimizer

fn step_lr() -> f32 {
  return lr_table[min(counters[0], arrayLength(&lr_table) - 1u)];
}

fn element_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// (element, its segment) of this invocation; the segment is -1 past n or in a segment's padding.
fn element_segment(gid: vec3<u32>, nwg: vec3<u32>) -> vec2<i32> {
  let i = element_index(gid, nwg);
  if (i >= opt.n) {
    return vec2<i32>(i32(i), -1);
  }
  return vec2<i32>(i32(i), find_segment(i, opt.num_segments));
}

// Adam's moments of element i after gradient g at step t (stored back), and the bias-corrected
// direction m̂ / (√v̂ + ε) (LAMB's first stage).
fn adam_direction(i: u32, g: f32, t: f32) -> f32 {
  let m1 = opt.beta1 * m[i] + opt.one_minus_beta1 * g;
  let v1 = opt.beta2 * v[i] + opt.one_minus_beta2 * g * g;
  m[i] = m1;
  v[i] = v1;
  let denom = sqrt(v1) / sqrt(one_minus_pow(opt.log_beta2, t)) + opt.eps;
  return (m1 / one_minus_pow(opt.log_beta1, t)) / denom;
}

@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let at = element_segment(gid, nwg);
  if (at.y < 0) {
    return;
  }
  let i = u32(at.x);
  let seg = segments[at.y];
  let theta = params[i];
  let g = grads[i] * gradient_factor(opt.grad_scale, opt.max_norm) + seg.weight_decay * theta;
  var d = g;
  if (opt.momentum != 0.0) {
    // torch.optim.SGD: the buffer starts as the first gradient, without dampening.
    var b = g;
    if (counters[0] != 0u) {
      b = opt.momentum * m[i] + opt.one_minus_dampening * g;
    }
    m[i] = b;
    d = b;
    if (opt.nesterov != 0u) {
      d = g + opt.momentum * b;
    }
  }
  params[i] = theta - step_lr() * seg.lr_mult * d;
}

@compute @workgroup_size(256)
fn lamb_moments(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let at = element_segment(gid, nwg);
  let i = u32(at.x);
  if (at.y < 0) {
    if (i < opt.n) {
      // Keeps the scratch defined; no segment norm covers it.
      lamb_update_out[i] = 0.0;
    }
    return;
  }
  let seg = segments[at.y];
  let t = f32(counters[0] + 1u);
  let g = grads[i] * gradient_factor(opt.grad_scale, opt.max_norm);
  lamb_update_out[i] = adam_direction(i, g, t) + seg.weight_decay * params[i];
}

var<workgroup> partial: array<vec2<f32>, 256>;

@compute @workgroup_size(256)
fn segment_sumsq(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let s = wid.x + wid.y * nwg.x;
  var acc = vec2<f32>(0.0);
  if (s < sumsq_opt.num_segments) {
    let end = min(segments[s].end, sumsq_opt.n);
    for (var j = segments[s].start + lid; j < end; j += 256u) {
      let a = sumsq_a[j];
      let b = sumsq_b[j];
      acc += vec2<f32>(a * a, b * b);
    }
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u && s < sumsq_opt.num_segments) {
    sumsq_out[s] = partial[0].x;
    sumsq_out[sumsq_opt.num_segments + s] = partial[0].y;
  }
}

@compute @workgroup_size(256)
fn lamb_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let at = element_segment(gid, nwg);
  if (at.y < 0) {
    return;
  }
  let i = u32(at.x);
  let seg = segments[at.y];
  var trust = 1.0;
  if (seg.weight_decay != 0.0 || ALWAYS_ADAPT) {
    let w_norm = sqrt(seg_norms[at.y]);
    let r_norm = sqrt(seg_norms[i32(opt.num_segments) + at.y]);
    if (w_norm > 0.0 && r_norm > 0.0) {
      trust = w_norm / r_norm;
      if (TRUST_CLIP) {
        trust = min(trust, 1.0);
      }
    }
  }
  params[i] = params[i] - step_lr() * seg.lr_mult * trust * lamb_update_in[i];
}

@compute @workgroup_size(1)
fn advance_step() {
  step_counters[0] = step_counters[0] + 1u;
}
