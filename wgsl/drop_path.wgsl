// Stochastic depth (DropPath, algorithms.md §9.7, timm/Huang style): a residual branch f(x) is
// kept or dropped per sample, y_r = f(x)_r · k_r/(1−p) with k_r ~ Bernoulli(1−p) for each row r
// of the batch axis, and the skip connection stays. The mask comes from Philox keyed by (seed,
// stream, step) with step = counters[counter_index] (the trainer's micro-step), as dropout's:
//   drop_path_scales:   scales[r] = keep_r ? 1/(1−p) : 0,
//                       keep_r = philox_uniform(philox_word(seed, stream, step, r)) ≥ p
//   drop_path_forward:  y[i]  = x[i] · scales[i / cols]
//   drop_path_backward: dx[i] = dy[i] · scales[i / cols]            (dx += … with ACCUMULATE)
// The per-row scales are written once per forward and read by the backward, so the mask is
// computed once per row instead of once per element.
//
// Bindings:
//   drop_path_scales:   0 counters: array<u32> (≥ counter_index + 1), 1 scales: array<f32> (rows)
//                       rw, 2 params: uniform DropPathParams
//   drop_path_forward:  0 x: array<X_T> (rows·cols), 1 y: array<X_T> (rows·cols) rw,
//                       2 scales: array<f32> (rows), 3 params: uniform DropPathParams
//   drop_path_backward: 0 dy: array<f32> (rows·cols), 1 dx: array<f32> (rows·cols) rw,
//                       2 scales: array<f32> (rows), 3 params: uniform DropPathParams
// X_T, the forward values' storage type, is f32 or f16 (core/kernels.ts withStorage).
// Override: ACCUMULATE (drop_path_backward only).
// Dispatch: drop_path_scales one invocation per block of 4 rows (one Philox evaluation),
// ceil(ceil(rows / 4) / 256) workgroups; the others ceil(rows·cols / 256) workgroups of 256; both
// split over x and y above 65535 (core/kernels.ts grid).

//!include philox

struct DropPathParams {
  rows: u32,
  cols: u32,
  p: f32,
  seed: u32,
  stream: u32,
  counter_index: u32,
  scale: f32,
}

override ACCUMULATE: bool = false;

alias X_T = f32;

@group(0) @binding(0) var<storage, read> counters: array<u32>;
@group(0) @binding(1) var<storage, read_write> scales_out: array<f32>;
@group(0) @binding(2) var<uniform> mask_params: DropPathParams;

@compute @workgroup_size(256)
fn drop_path_scales(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (t >= (mask_params.rows + 3u) / 4u) {
    return;
  }
  let step = counters[mask_params.counter_index];
  let key = vec2<u32>(mask_params.seed, mask_params.stream);
  let words = philox4x32(vec4<u32>(t, step, 0u, 0u), key);
  for (var j = 0u; j < 4u; j = j + 1u) {
    let r = 4u * t + j;
    if (r < mask_params.rows) {
      scales_out[r] = select(0.0, mask_params.scale, philox_uniform(words[j]) >= mask_params.p);
    }
  }
}

@group(0) @binding(0) var<storage, read> x: array<X_T>;
@group(0) @binding(1) var<storage, read_write> y: array<X_T>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<uniform> params: DropPathParams;

@compute @workgroup_size(256)
fn drop_path_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < params.rows * params.cols) {
    y[i] = X_T(f32(x[i]) * scales[i / params.cols]);
  }
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn drop_path_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < params.rows * params.cols) {
    var g = dy[i] * scales[i / params.cols];
    if (ACCUMULATE) {
      g = g + dx[i];
    }
    dx[i] = g;
  }
}
