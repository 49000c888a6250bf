// Dropout (inverted, algorithms.md §9.5) and alpha dropout (for SELU nets, §6.3; PyTorch
// nn.AlphaDropout), with the mask regenerated from Philox in the backward pass instead of stored.
//
// Mask: element i is kept when philox_uniform(philox_word(seed, stream, step, i)) >= p, where
// seed and stream come from the uniform and step = counters[counter_index] is read from a storage
// buffer, so the trainer's GPU-side step counter advances the mask without CPU writes and the
// backward of a step sees exactly the forward's mask.
//   dropout_forward:        y  = keep ? x·scale : 0                  (scale = 1/(1−p))
//   dropout_backward:       dx = keep ? dy·scale : 0                 (dx += … with ACCUMULATE)
//   alpha_dropout_forward:  y  = keep ? scale·x + shift : dropped    (scale = a, shift = b,
//                                                                     dropped = a·α' + b)
//   alpha_dropout_backward: dx = keep ? dy·scale : 0                 (dx += … with ACCUMULATE)
// with α' = −λα = −1.7580993408473766, a = ((1−p)(1+p·α'²))^{−1/2}, b = −a·α'·p; scale, shift and
// dropped are computed in float64 by core/ops/dropout.ts so each output is one f32 rounding away.
//
// Bindings (every entry point):
//   0 x: array<X_T> (n) forward input, or dy: array<f32> (n) in the backward
//   1 y: array<X_T> (n) forward output, or dx: array<f32> (n) in the backward
// X_T, the forward values' storage type, is f32 or f16 (core/kernels.ts withStorage).
//   2 counters: array<u32> (≥ counter_index + 1), the step counters
//   3 params: uniform DropoutParams
// Override: ACCUMULATE (backward entry points only): dx += instead of dx =.
// Dispatch: one invocation per block of 4 elements (one Philox evaluation gives the 4 words of
// elements 4t..4t+3), ceil(ceil(n / 4) / 256) workgroups of 256, split over x and y above 65535
// (core/kernels.ts grid).

//!include philox

struct DropoutParams {
  n: u32,
  p: f32,
  seed: u32,
  stream: u32,
  counter_index: u32,
  scale: f32,
  shift: f32,
  dropped: f32,
}

override ACCUMULATE: bool = false;

alias X_T = f32;

@group(0) @binding(0) var<storage, read> x: array<X_T>;
@group(0) @binding(1) var<storage, read_write> y: array<X_T>;
@group(0) @binding(2) var<storage, read> counters: array<u32>;
@group(0) @binding(3) var<uniform> params: DropoutParams;

// The four Philox words of block t: word j is philox_word(seed, stream, step, 4t + j).
fn dropout_block(t: u32) -> vec4<u32> {
  let step = counters[params.counter_index];
  return philox4x32(vec4<u32>(t, step, 0u, 0u), vec2<u32>(params.seed, params.stream));
}

fn dropout_keep(word: u32) -> bool {
  return philox_uniform(word) >= params.p;
}

// The block index of this invocation; the kernel covers elements 4t..4t+3 below n.
fn dropout_thread(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = dropout_thread(gid, nwg);
  if (t >= (params.n + 3u) / 4u) {
    return;
  }
  let words = dropout_block(t);
  for (var j = 0u; j < 4u; j = j + 1u) {
    let i = 4u * t + j;
    if (i < params.n) {
      y[i] = X_T(select(0.0, f32(x[i]) * params.scale, dropout_keep(words[j])));
    }
  }
}

@compute @workgroup_size(256)
fn alpha_dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = dropout_thread(gid, nwg);
  if (t >= (params.n + 3u) / 4u) {
    return;
  }
  let words = dropout_block(t);
  for (var j = 0u; j < 4u; j = j + 1u) {
    let i = 4u * t + j;
    if (i < params.n) {
      let kept = params.scale * f32(x[i]) + params.shift;
      y[i] = X_T(select(params.dropped, kept, dropout_keep(words[j])));
    }
  }
}

// The backward entry points bind dy and dx where the forward binds x and y.
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;

// Both backward passes are dx = keep ? scale·dy : 0; they differ only in the scale the binding
// puts in the uniform (1/(1−p) or a).
fn dropout_backward_block(t: u32) {
  let words = dropout_block(t);
  for (var j = 0u; j < 4u; j = j + 1u) {
    let i = 4u * t + j;
    if (i < params.n) {
      var g = select(0.0, dy[i] * params.scale, dropout_keep(words[j]));
      if (ACCUMULATE) {
        g = g + dx[i];
      }
      dx[i] = g;
    }
  }
}

@compute @workgroup_size(256)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = dropout_thread(gid, nwg);
  if (t < (params.n + 3u) / 4u) {
    dropout_backward_block(t);
  }
}

@compute @workgroup_size(256)
fn alpha_dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = dropout_thread(gid, nwg);
  if (t < (params.n + 3u) / 4u) {
    dropout_backward_block(t);
  }
}
