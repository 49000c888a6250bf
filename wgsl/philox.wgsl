// Philox 4x32-10, a counter-based random number generator (Salmon et al., "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011). The output is a pure function of (counter, key), so a
// kernel keyed by (seed, stream) with counter (element block, step, ...) regenerates the same bits
// in a backward pass or after a resume without storing them.
//
// Library: other kernels pull the functions above the entry-points marker in with
// `//!include philox`. Below the entry-points marker, one test entry point:
//   philox_test: out[4*i + j] = philox4x32(vec4(i, params.c1, params.c2, params.c3),
//                                          vec2(params.k0, params.k1))[j]
//   bindings: 0 out: array<u32> (4*n), 1 params: uniform {n, c1, c2, c3, k0, k1}
//   dispatch: ceil(n / 64) workgroups of 64 (x, with y when over 65535)

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// The high 32 bits of the 64-bit product a*b, from 16-bit halves (WGSL has no 64-bit integers).
fn philox_mulhi(a: u32, b: u32) -> u32 {
  let a_lo = a & 0xFFFFu;
  let a_hi = a >> 16u;
  let b_lo = b & 0xFFFFu;
  let b_hi = b >> 16u;
  let lo_lo = a_lo * b_lo;
  let hi_lo = a_hi * b_lo;
  let lo_hi = a_lo * b_hi;
  let hi_hi = a_hi * b_hi;
  let cross = (lo_lo >> 16u) + (hi_lo & 0xFFFFu) + (lo_hi & 0xFFFFu);
  return hi_hi + (hi_lo >> 16u) + (lo_hi >> 16u) + (cross >> 16u);
}

fn philox4x32(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var round = 0u; round < 10u; round = round + 1u) {
    let hi0 = philox_mulhi(PHILOX_M0, c.x);
    let lo0 = PHILOX_M0 * c.x;
    let hi1 = philox_mulhi(PHILOX_M1, c.z);
    let lo1 = PHILOX_M1 * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
  }
  return c;
}

// A uniform float in (0, 1): the top 24 bits, offset by half a step so that it is never 0 or 1.
fn philox_uniform(bits: u32) -> f32 {
  return (f32(bits >> 8u) + 0.5) * (1.0 / 16777216.0);
}

// The random word of element `index` in stream (seed, stream) at `step`: element i takes word
// i % 4 of the block i / 4, so four neighbouring elements share one Philox evaluation's counter.
fn philox_word(seed: u32, stream: u32, step: u32, index: u32) -> u32 {
  let r = philox4x32(vec4<u32>(index >> 2u, step, 0u, 0u), vec2<u32>(seed, stream));
  return r[index & 3u];
}

//!entry-points
struct PhiloxTestParams {
  n: u32,
  c1: u32,
  c2: u32,
  c3: u32,
  k0: u32,
  k1: u32,
}

@group(0) @binding(0) var<storage, read_write> philox_out: array<u32>;
@group(0) @binding(1) var<uniform> philox_params: PhiloxTestParams;

@compute @workgroup_size(64)
fn philox_test(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= philox_params.n) {
    return;
  }
  let r = philox4x32(
    vec4<u32>(i, philox_params.c1, philox_params.c2, philox_params.c3),
    vec2<u32>(philox_params.k0, philox_params.k1),
  );
  philox_out[4u * i] = r.x;
  philox_out[4u * i + 1u] = r.y;
  philox_out[4u * i + 2u] = r.z;
  philox_out[4u * i + 3u] = r.w;
}
