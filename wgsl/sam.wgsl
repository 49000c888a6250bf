// Sharpness-aware minimisation's own work over the flat buffers (algorithms.md §3): the global
// norm of the ascent direction, the perturbation w ← w + ε (keeping w to restore), and the
// per-sample g² sums of SSAM's Fisher score.
//
//   norm_partials: Σ (t·v)² over chunks, t = |w| with ADAPTIVE (ASAM's ‖T v‖, T = |w|), else 1.
//                  0 setup, 1 w: array<f32> (n), 2 v: array<f32> (n), 3 partials: array<f32>
//                  (chunks) written. A chunk is 256·16 values; each invocation sums 16 values 256
//                  apart, then a tree over the workgroup. Dispatch: `chunks` workgroups of 256,
//                  split over x and y above 65535.
//   norm_total:    norm[0] = Σ partials. 0 setup, 1 partials: array<f32> (chunks), 2 norm:
//                  array<f32> (≥ 1) written. Dispatch: 1 workgroup of 256.
//   perturb:       backup[i] = w[i]; w[i] += ε_i with
//                  ε_i = ρ · t_i² · v_i / (sqrt(norm[0]) + eps) · (mask[i] with MASKED, else 1),
//                  t_i = |w_i| with ADAPTIVE (so t² = w²), else 1. 0 setup, 1 w: array<f32> rw,
//                  2 v: array<f32>, 3 norm: array<f32> (read [0]), 4 backup: array<f32> (n)
//                  written, 5 mask: array<f32> (n; any buffer when MASKED is false).
//                  Dispatch: ceil(n / 256) workgroups of 256, split over x and y above 65535.
//   add_squares:   sums[i] += g[i]². 0 setup, 1 g: array<f32> (n), 2 sums: array<f32> (n) rw.
//                  Dispatch: as perturb.
// setup: {n, chunks = ceil(n / 4096), rho: f32, eps: f32}. Padding between tensors has v = 0,
// so it is neither perturbed nor counted.

struct Setup {
  n: u32,
  chunks: u32,
  rho: f32,
  eps: f32,
}

override ADAPTIVE: bool = false;
override MASKED: bool = false;

const GROUP: u32 = 256u;
const PER_THREAD: u32 = 16u;

@group(0) @binding(0) var<uniform> setup: Setup;

@group(0) @binding(1) var<storage, read> w_in: array<f32>;
@group(0) @binding(2) var<storage, read> v_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

@group(0) @binding(1) var<storage, read> partials_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm_out: array<f32>;

@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> norm: array<f32>;
@group(0) @binding(4) var<storage, read_write> backup: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<f32>;

@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;

var<workgroup> red: array<f32, GROUP>;

// Sum of `value` over the workgroup; the result is valid in every invocation.
fn workgroup_sum(lane: u32, value: f32) -> f32 {
  red[lane] = value;
  workgroupBarrier();
  for (var s = GROUP / 2u; s > 0u; s = s / 2u) {
    if (lane < s) {
      red[lane] = red[lane] + red[lane + s];
    }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(GROUP)
fn norm_partials(
  @builtin(local_invocation_index) lane: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let chunk = wid.x + wid.y * nwg.x;
  if (chunk >= setup.chunks) {
    return;
  }
  var s = 0.0;
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = chunk * GROUP * PER_THREAD + k * GROUP + lane;
    if (i < setup.n) {
      var x = v_in[i];
      if (ADAPTIVE) {
        x = abs(w_in[i]) * x;
      }
      s += x * x;
    }
  }
  let total = workgroup_sum(lane, s);
  if (lane == 0u) {
    partials[chunk] = total;
  }
}

@compute @workgroup_size(GROUP)
fn norm_total(@builtin(local_invocation_index) lane: u32) {
  var s = 0.0;
  for (var c = lane; c < setup.chunks; c += GROUP) {
    s += partials_in[c];
  }
  let total = workgroup_sum(lane, s);
  if (lane == 0u) {
    norm_out[0] = total;
  }
}

@compute @workgroup_size(GROUP)
fn perturb(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * GROUP;
  if (i >= setup.n) {
    return;
  }
  let x = w[i];
  backup[i] = x;
  var e = setup.rho * v[i] / (sqrt(max(norm[0], 0.0)) + setup.eps);
  if (ADAPTIVE) {
    e = e * x * x;
  }
  if (MASKED) {
    e = e * mask[i];
  }
  w[i] = x + e;
}

@compute @workgroup_size(GROUP)
fn add_squares(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let i = gid.x + gid.y * nwg.x * GROUP;
  if (i >= setup.n) {
    return;
  }
  let x = g[i];
  sums[i] = sums[i] + x * x;
}
