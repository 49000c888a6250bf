// Copy probe: the adapter's memory bandwidth. out[i] = x[i] over n vec4 values (16 bytes read and
// 16 written per invocation).
//   main: bindings 0 x: array<vec4<f32>> (n), 1 out: array<vec4<f32>> (n), 2 params {n}
// Dispatch: ceil(n / 256) workgroups of 256 (x, with y above 65535).

struct CopyParams {
  n: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> params: CopyParams;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < params.n) {
    out[i] = x[i];
  }
}
