// The mean (or sum, with scale 1) over one axis of a row-major tensor viewed as [O, A, IN], and its
// backward, the broadcast back:
//   reduce:    out[o, i] = scale · Σ_a x[o, a, i]                  (out: [O, IN])
//   broadcast: dx[o, a, i] (=|+=) scale · dy[o, i]                 (dx: [O, A, IN])
// with scale = 1/A for a mean. Sums accumulate in f32 in order of a.
//
// Entry points, bindings (group 0):
//   reduce:    0 x: array<X_T> (O·A·IN)  1 out: array<X_T> (O·IN), read_write  2 params
//   broadcast: 0 dy: array<f32> (O·IN)   1 dx: array<f32> (O·A·IN), read_write 2 params
// params {outer, axis, inner, scale}. X_T is f32 or f16 (core/kernels.ts withStorage); gradients
// are f32. Override ACCUMULATE: out += (reduce) and dx += (broadcast) instead of =.
// Dispatch: one invocation per output element (reduce: O·IN, broadcast: O·A·IN), ceil(count / 256)
// workgroups of 256 split over x and y above 65535 (core/kernels.ts grid).

alias X_T = f32;

struct AxisParams {
  outer: u32,
  axis: u32,
  inner: u32,
  scale: f32,
}

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<storage, read> x: array<X_T>;
@group(0) @binding(1) var<storage, read_write> out: array<X_T>;
@group(0) @binding(2) var<uniform> params: AxisParams;

@compute @workgroup_size(256)
fn reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = gid.x + gid.y * nwg.x * 256u;
  if (j >= params.outer * params.inner) {
    return;
  }
  let o = j / params.inner;
  let i = j % params.inner;
  var sum = 0.0;
  for (var a = 0u; a < params.axis; a++) {
    sum += f32(x[(o * params.axis + a) * params.inner + i]);
  }
  if (ACCUMULATE) {
    out[j] = X_T(f32(out[j]) + params.scale * sum);
  } else {
    out[j] = X_T(params.scale * sum);
  }
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<uniform> grad_params: AxisParams;

@compute @workgroup_size(256)
fn broadcast(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = gid.x + gid.y * nwg.x * 256u;
  let axis_inner = grad_params.axis * grad_params.inner;
  if (j >= grad_params.outer * axis_inner) {
    return;
  }
  let o = j / axis_inner;
  let i = j % grad_params.inner;
  let v = grad_params.scale * dy[o * grad_params.inner + i];
  if (ACCUMULATE) {
    dx[j] = dx[j] + v;
  } else {
    dx[j] = v;
  }
}
