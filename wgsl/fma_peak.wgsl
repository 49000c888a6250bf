// FMA throughput probe: the adapter's arithmetic ceiling. Each invocation runs CHAINS independent
// vec4 recurrences acc ← fma(acc, b, c) for `iterations` steps (2·4·CHAINS FLOP per step) and
// writes their sum, so the work cannot be optimised away; values stay bounded (|b| < 1).
// V_T, the type the recurrences compute in, is f32 or f16 (core/kernels.ts withStorage): the f16
// probe measures the adapter's half-precision ceiling (packed f16 FMA where the GPU has it).
//   main: bindings 0 out: array<f32> (invocations), 1 params {invocations, iterations, b, c}
//   acc of chain j starts at V_T(x0 + j, x0 + j + 0.25, x0 + j + 0.5, x0 + j + 0.75),
//   x0 = i / invocations; b and c are rounded to V_T; the chains are summed in f32.
// Dispatch: ceil(invocations / 256) workgroups of 256 (x, with y above 65535).

struct FmaParams {
  invocations: u32,
  iterations: u32,
  b: f32,
  c: f32,
}

alias V_T = f32;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> params: FmaParams;

const CHAINS: u32 = 8u;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.invocations) {
    return;
  }
  let x0 = f32(i) / f32(params.invocations);
  let b = vec4<V_T>(V_T(params.b));
  let c = vec4<V_T>(V_T(params.c));
  var acc: array<vec4<V_T>, 8>;
  for (var j = 0u; j < CHAINS; j = j + 1u) {
    acc[j] = vec4<V_T>(
      vec4<f32>(x0 + f32(j), x0 + f32(j) + 0.25, x0 + f32(j) + 0.5, x0 + f32(j) + 0.75),
    );
  }
  for (var t = 0u; t < params.iterations; t = t + 1u) {
    acc[0] = fma(acc[0], b, c);
    acc[1] = fma(acc[1], b, c);
    acc[2] = fma(acc[2], b, c);
    acc[3] = fma(acc[3], b, c);
    acc[4] = fma(acc[4], b, c);
    acc[5] = fma(acc[5], b, c);
    acc[6] = fma(acc[6], b, c);
    acc[7] = fma(acc[7], b, c);
  }
  var sum = vec4<f32>(0.0);
  for (var j = 0u; j < CHAINS; j = j + 1u) {
    sum = sum + vec4<f32>(acc[j]);
  }
  out[i] = sum.x + sum.y + sum.z + sum.w;
}
