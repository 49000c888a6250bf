// The encoding of a token's absolute position p (AUNN, algorithms.md §6.2), one row per sample.
// p comes as `words` f32 columns of the input row, each an exact integer < 2^24, least
// significant first: p = w0 + w1·2^24 (so p < 2^48, past 2^32; WGSL has no 64-bit integers).
// Inside, p is four 12-bit chunks c_m = (p >> 12m) & 4095, m = 0..3.
//   kind 0 (bits):      out[r, j] = 2·bit_j(p) − 1 ∈ {−1, 1}, LSB first (bit j of chunk j / 12)
//   kind 1 (sinusoids): for pair k = j / 2, a frequency f_k in turns per position given by its
//                       table row: g_km = frac(2^{12m}·f_k), m = 0..3, split on the CPU in float64
//                       into hi_km (a multiple of 2^-12 below 1) and lo_km = g_km − hi_km, so that
//                       c_m·hi_km is exact in f32 (a 24-bit product) and the phase
//                       φ = frac(Σ_m frac(c_m·hi_km) + c_m·lo_km) = frac(p·f_k) loses only
//                       ~2^-21 turns at any p; out[r, 2k] = sin(2πφ), out[r, 2k+1] = cos(2πφ),
//                       with φ moved into [−½, ½) so the argument stays in [−π, π).
// Multi-scale sinusoids and random Fourier features differ only in their frequencies.
//
// Bindings: 0 x: array<f32> (rows·stride; the words are columns 0 .. words−1 of each row),
//           1 out: array<f32> (rows·features) rw, 2 table: array<f32> (features/2 · 8, rows
//           [hi_k0, lo_k0, …, hi_k3, lo_k3]; any 4 floats for bits), 3 params: uniform.
// Dispatch: one invocation per output value, ceil(rows·features / 256) workgroups of 256, split
// over x and y above 65535 (core/kernels.ts grid).

struct PositionParams {
  rows: u32,
  stride: u32,
  words: u32,
  features: u32,
  kind: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<uniform> params: PositionParams;

const TWO_PI: f32 = 6.283185307179586;

@compute @workgroup_size(256)
fn position_encoding(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.rows * params.features) {
    return;
  }
  let r = i / params.features;
  let j = i % params.features;
  let w0 = u32(max(x[r * params.stride], 0.0));
  var w1 = 0u;
  if (params.words > 1u) {
    w1 = u32(max(x[r * params.stride + 1u], 0.0));
  }
  let c = vec4<u32>(w0 & 4095u, (w0 >> 12u) & 4095u, w1 & 4095u, (w1 >> 12u) & 4095u);
  if (params.kind == 0u) {
    let bit = (c[min(j / 12u, 3u)] >> (j % 12u)) & 1u;
    out[i] = select(-1.0, 1.0, bit == 1u && j < 48u);
    return;
  }
  let k = j / 2u;
  var turns = 0.0;
  for (var m = 0u; m < 4u; m = m + 1u) {
    let cm = f32(c[m]);
    turns = turns + fract(cm * table[k * 8u + 2u * m]) + cm * table[k * 8u + 2u * m + 1u];
  }
  var phase = fract(turns);
  if (phase >= 0.5) {
    phase = phase - 1.0;
  }
  let angle = TWO_PI * phase;
  out[i] = select(cos(angle), sin(angle), j % 2u == 0u);
}
