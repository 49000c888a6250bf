// Random fills from Philox, for initialisation on the GPU (LeCun-normal, Kaiming-uniform) and for
// per-step noise:
//   normal_fill:  out[i] = mean + std·z_i, z_i ~ N(0, 1) by Box–Muller
//   uniform_fill: out[i] = low + (high − low)·u_i, u_i = philox_uniform(w_i) ∈ (0, 1)
//   normal_add:   out[i] += b · scale[step] · segments[s].lr_mult · z_i for i in segment s (parameter
//                 noise: the flat parameters, a per-step std table, the tensors that get noise)
// (not `uniform`: an entry point of that name would shadow the address space in `var<uniform>`)
// where w_i = philox_word(seed, stream, step, i) is word i % 4 of the Philox block
// philox4x32((i / 4, step, 0, 0), (seed, stream)), and step = counters[counter_index] is read from
// a storage buffer (the one scheme for both uses: per-step noise passes the trainer's step
// counters, an initialisation passes a buffer holding a fixed step).
//
// Box–Muller pairs elements (2k, 2k+1), i.e. words (0, 1) and (2, 3) of each block:
//   r = sqrt(−2·ln u_{2k}),  θ = 2π·(u_{2k+1} − 1/2) ∈ (−π, π)
//   z_{2k} = r·cos θ,  z_{2k+1} = r·sin θ
// θ is centred on 0 because WGSL's cos/sin accuracy is only specified on [−π, π]. u never is 0,
// so r is finite; |z| ≤ sqrt(−2·ln(2^−25)) ≈ 5.9 (the tails beyond 5.9σ are cut off). −ln u is
// computed by a series near u = 1, where f32 log is inaccurate (see neg_log_uniform).
//
// Bindings (every entry point):
//   0 out: array<f32> (n)
//   1 counters: array<u32> (≥ counter_index + 1)
//   2 params: uniform RandomFillParams {n, seed, stream, counter_index, a, b, num_segments}
//     normal_fill: a = mean, b = std;  uniform_fill: a = low, b = high − low;  normal_add: b = factor
// and normal_add's own:
//   3 scale: array<f32> (≥ 1), indexed by the step (the last entry beyond its end)
//   4 segments: array<Segment> (num_segments), sorted [start, end) ranges with an lr multiplier,
//     as core/ops/optimizer.ts segmentTable makes them; elements in no segment are left alone
// Dispatch: one invocation per block of 4 elements (one Philox evaluation), ceil(ceil(n / 4) / 256)
// workgroups of 256, split over x and y above 65535 (core/kernels.ts grid).

//!include philox

struct RandomFillParams {
  n: u32,
  seed: u32,
  stream: u32,
  counter_index: u32,
  a: f32,
  b: f32,
  num_segments: u32,
}

struct Segment {
  start: u32,
  end: u32,
  lr_mult: f32,
  weight_decay: f32,
}

const TWO_PI: f32 = 6.283185307179586;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> counters: array<u32>;
@group(0) @binding(2) var<uniform> params: RandomFillParams;

fn fill_block(t: u32) -> vec4<u32> {
  let step = counters[params.counter_index];
  return philox4x32(vec4<u32>(t, step, 0u, 0u), vec2<u32>(params.seed, params.stream));
}

// −ln(u) for u ∈ (0, 1). Near u = 1 WGSL's log is only accurate to an absolute 2^−21, which is
// most of −ln(u) ≈ 1 − u there (and could make it negative, and r NaN); so for u > 7/8 it sums
// the series −ln(1 − d) = Σ d^k/k with d = 1 − u, which is exact in f32 for u ≥ 1/2; the terms
// after d^9/9 add less than 1e−9 relative.
fn neg_log_uniform(u: f32) -> f32 {
  let d = 1.0 - u;
  if (d < 0.125) {
    let tail = 1.0 / 6.0 + d * (1.0 / 7.0 + d * (1.0 / 8.0 + d * (1.0 / 9.0)));
    return d * (1.0 + d * (0.5 + d * (1.0 / 3.0 + d * (0.25 + d * (0.2 + d * tail)))));
  }
  return -log(u);
}

// Two normal deviates from the words (w0, w1).
fn box_muller(w0: u32, w1: u32) -> vec2<f32> {
  let r = sqrt(2.0 * neg_log_uniform(philox_uniform(w0)));
  let theta = TWO_PI * (philox_uniform(w1) - 0.5);
  return r * vec2<f32>(cos(theta), sin(theta));
}

@compute @workgroup_size(256)
fn normal_fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (t >= (params.n + 3u) / 4u) {
    return;
  }
  let w = fill_block(t);
  let z01 = box_muller(w.x, w.y);
  let z23 = box_muller(w.z, w.w);
  let z = array<f32, 4>(z01.x, z01.y, z23.x, z23.y);
  for (var j = 0u; j < 4u; j = j + 1u) {
    let i = 4u * t + j;
    if (i < params.n) {
      out[i] = params.a + params.b * z[j];
    }
  }
}

@compute @workgroup_size(256)
fn uniform_fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (t >= (params.n + 3u) / 4u) {
    return;
  }
  let w = fill_block(t);
  for (var j = 0u; j < 4u; j = j + 1u) {
    let i = 4u * t + j;
    if (i < params.n) {
      out[i] = params.a + params.b * philox_uniform(w[j]);
    }
  }
}

@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> segments: array<Segment>;

// The segment holding element i (binary search over the sorted starts), or -1.
fn segment_of(i: u32) -> i32 {
  var lo = 0u;
  var hi = params.num_segments;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (segments[mid].start <= i) {
      lo = mid + 1u;
    } else {
      hi = mid;
    }
  }
  if (lo == 0u || i >= segments[lo - 1u].end) {
    return -1;
  }
  return i32(lo - 1u);
}

@compute @workgroup_size(256)
fn normal_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (t >= (params.n + 3u) / 4u) {
    return;
  }
  let step = counters[params.counter_index];
  let sigma = params.b * scale[min(step, arrayLength(&scale) - 1u)];
  let w = fill_block(t);
  let z01 = box_muller(w.x, w.y);
  let z23 = box_muller(w.z, w.w);
  let z = array<f32, 4>(z01.x, z01.y, z23.x, z23.y);
  for (var j = 0u; j < 4u; j = j + 1u) {
    let i = 4u * t + j;
    let s = segment_of(i);
    if (i < params.n && s >= 0) {
      out[i] = out[i] + sigma * segments[s].lr_mult * z[j];
    }
  }
}
