// Untargeted L∞ adversarial examples in pixel space (shared/specs/algorithms.md §10): the batch's
// perturbed pixels and the model's normalised input made from them, on the GPU, so FGSM and PGD
// need no per-sample CPU work.
//
// Values are raw: what the gather reads before normalisation (a byte 0..255 as f32, or an f32
// feature), so the pixel range [0, 1] is [0, hi] (hi = 255 for bytes, 1 for f32 pixels) and ε, η
// are in the same raw units (ε·hi). `clean` holds the batch's clean values, `adv` the perturbed
// ones; every entry writes x = adv · stats[s] + stats[stat_count + s] with s = (i mod features) /
// plane (the gather's normalisation, wgsl/gather.wgsl), in X_T.
//   attack_start: PGD's random start
//                 adv[i] = clamp(clean[i] + eps·(2u − 1), 0, hi), u = philox_uniform of
//                 philox_word(seed, stream, cursor[cursor_index], i) (keyed by the batch, so each
//                 batch of the split draws its own start, and a run with the same seed the same)
//   attack_step:  one signed-gradient step, projected onto the ε-ball around clean, then [0, hi]
//                 base = FROM_CLEAN ? clean[i] : adv[i]
//                 adv[i] = clamp(clamp(base + step·sign(grad[i]), clean[i] − eps, clean[i] + eps),
//                                0, hi)
//                 (FROM_CLEAN with step = eps is FGSM: clamp(clean + eps·sign(g), 0, hi); without
//                 it, a PGD step from the previous iterate). sign(0) = 0, as torch.sign.
// grad is dLoss/dx of the normalised input; its sign is the pixel gradient's, since the
// normalisation divides by a positive std.
//
// Bindings:
//   0 clean: array<f32> (n), 1 adv: array<f32> (n), 2 x: array<X_T> (n; X_T f32 or f16,
//   core/kernels.ts withStorage), 3 stats: array<f32> (2·stat_count), 4 params: uniform
//   AttackParams, 5 cursor: array<u32> (attack_start) or grad: array<f32> (n) (attack_step)
// Override: FROM_CLEAN (attack_step).
// Dispatch: ceil(n / 256) workgroups of 256, split over x and y above 65535 (core/kernels.ts
// grid); n = batch·features.

//!include philox

struct AttackParams {
  n: u32,
  features: u32,
  plane: u32,
  stat_count: u32,
  eps: f32,
  step: f32,
  hi: f32,
  seed: u32,
  stream: u32,
  cursor_index: u32,
  unused0: u32,
  unused1: u32,
}

override FROM_CLEAN: bool = false;

alias X_T = f32;

@group(0) @binding(0) var<storage, read> clean: array<f32>;
@group(0) @binding(1) var<storage, read_write> adv: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<X_T>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<uniform> params: AttackParams;
@group(0) @binding(5) var<storage, read> cursor: array<u32>;
@group(0) @binding(5) var<storage, read> grad: array<f32>;

// Stores the perturbed value and the model's input made from it.
fn store(i: u32, v: f32) {
  adv[i] = v;
  let s = (i % params.features) / params.plane;
  x[i] = X_T(v * stats[s] + stats[params.stat_count + s]);
}

@compute @workgroup_size(256)
fn attack_start(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) {
    return;
  }
  let u = philox_uniform(philox_word(params.seed, params.stream, cursor[params.cursor_index], i));
  store(i, clamp(clean[i] + params.eps * (2.0 * u - 1.0), 0.0, params.hi));
}

@compute @workgroup_size(256)
fn attack_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) {
    return;
  }
  let c = clean[i];
  var base = adv[i];
  if (FROM_CLEAN) {
    base = c;
  }
  let moved = clamp(base + params.step * sign(grad[i]), c - params.eps, c + params.eps);
  store(i, clamp(moved, 0.0, params.hi));
}
