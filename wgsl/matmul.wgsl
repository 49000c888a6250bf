// Matmul with a fused epilogue, f32, all matrices row-major and densely packed:
//   C[M,N] (=|+=) act( alpha · op(A)·op(B) + bias[N] ),   pre[M,N] = alpha · op(A)·op(B) + bias
// in the three layouts a linear layer needs (LAYOUT override):
//   0 nn: A[M,K]  · B[K,N]     (dX = dY·W, W stored [out,in])
//   1 nt: A[M,K]  · B[N,K]ᵀ    (forward Y = X·Wᵀ)
//   2 tn: A[K,M]ᵀ · B[K,N]     (dW = dYᵀ·X)
// Epilogue overrides: HAS_BIAS adds bias[col]; ACT is an activation id of wgsl/activation.wgsl
// (0 identity); STORE_PRE writes the pre-activation (bias added) to `pre`; ACCUMULATE makes
// C += result (gradient accumulation) instead of C = result.
//
// Entry point `main`, bindings (every one statically used, so `layout: "auto"` keeps them all;
// unused bias/pre get a small dummy buffer):
//   0 a: array<f32> (M·K)   1 b: array<f32> (K·N)   2 c: array<f32> (M·N), read_write
//   3 bias: array<f32> (N)  4 pre: array<f32> (M·N), read_write   5 params {m, n, k, alpha}
//
// Tiling: a workgroup computes a TILE_M × TILE_N block of C, walking K in steps of TILE_K through
// workgroup memory ((TILE_M + TILE_N)·TILE_K floats ≤ 16 KiB); each invocation holds a
// THREAD_M × THREAD_N register tile (at most 8 × 8) whose rows and columns are strided by the
// workgroup's height and width, so neighbouring invocations read neighbouring words of the tiles
// (no bank conflicts) and write neighbouring words of C (coalesced).
// Workgroup size: (TILE_N / THREAD_N, TILE_M / THREAD_M).
// Dispatch: (ceil(N / TILE_N), ceil(M / TILE_M)) workgroups: x over column tiles, y over row tiles.
// Loads outside [M, N, K] read 0, so any sizes work (including 1); each output sums k = 0..K-1 in
// order with fma, so tile shapes differ at most by what a compiler reassociates (none on llvmpipe).

//!include activation

struct MatmulParams {
  m: u32,
  n: u32,
  k: u32,
  alpha: f32,
}

override LAYOUT: u32 = 1u;
override HAS_BIAS: bool = false;
override ACT: u32 = 0u;
override STORE_PRE: bool = false;
override ACCUMULATE: bool = false;
override TILE_M: u32 = 64u;
override TILE_N: u32 = 64u;
override TILE_K: u32 = 16u;
override THREAD_M: u32 = 4u;
override THREAD_N: u32 = 4u;

// Register tiles are function-scope arrays, which need a constant size: the largest allowed.
const MAX_THREAD: u32 = 8u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> pre: array<f32>;
@group(0) @binding(5) var<uniform> params: MatmulParams;

// tile_a[kk · TILE_M + m] = op(A)[row0 + m, k0 + kk]
// tile_b[kk · TILE_N + n] = op(B)[k0 + kk, col0 + n]
var<workgroup> tile_a: array<f32, TILE_K * TILE_M>;
var<workgroup> tile_b: array<f32, TILE_K * TILE_N>;

// op(A)[row, kk], or 0 outside the matrix.
fn load_a(row: u32, kk: u32) -> f32 {
  if (row >= params.m || kk >= params.k) {
    return 0.0;
  }
  if (LAYOUT == 2u) {
    return a[kk * params.m + row];
  }
  return a[row * params.k + kk];
}

// op(B)[kk, col], or 0 outside the matrix.
fn load_b(kk: u32, col: u32) -> f32 {
  if (kk >= params.k || col >= params.n) {
    return 0.0;
  }
  if (LAYOUT == 1u) {
    return b[col * params.k + kk];
  }
  return b[kk * params.n + col];
}

@compute @workgroup_size(TILE_N / THREAD_N, TILE_M / THREAD_M)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let wg_x = TILE_N / THREAD_N;
  let wg_y = TILE_M / THREAD_M;
  let threads = wg_x * wg_y;
  let row0 = wid.y * TILE_M;
  let col0 = wid.x * TILE_N;

  var acc: array<f32, MAX_THREAD * MAX_THREAD>;
  var a_reg: array<f32, MAX_THREAD>;
  var b_reg: array<f32, MAX_THREAD>;

  for (var k0 = 0u; k0 < params.k; k0 += TILE_K) {
    // Consecutive invocations load consecutive addresses of the source matrix: along k where
    // the matrix is stored with k innermost, along m (or n) otherwise.
    for (var e = local_index; e < TILE_M * TILE_K; e += threads) {
      var m_local = e / TILE_K;
      var k_local = e % TILE_K;
      if (LAYOUT == 2u) {
        m_local = e % TILE_M;
        k_local = e / TILE_M;
      }
      tile_a[k_local * TILE_M + m_local] = load_a(row0 + m_local, k0 + k_local);
    }
    for (var e = local_index; e < TILE_N * TILE_K; e += threads) {
      var n_local = e % TILE_N;
      var k_local = e / TILE_N;
      if (LAYOUT == 1u) {
        n_local = e / TILE_K;
        k_local = e % TILE_K;
      }
      tile_b[k_local * TILE_N + n_local] = load_b(k0 + k_local, col0 + n_local);
    }
    workgroupBarrier();

    // Past K both tiles hold zeros, and fma(0, 0, s) = s: the padding changes no sum.
    for (var kk = 0u; kk < TILE_K; kk++) {
      for (var i = 0u; i < THREAD_M; i++) {
        a_reg[i] = tile_a[kk * TILE_M + lid.y + i * wg_y];
      }
      for (var j = 0u; j < THREAD_N; j++) {
        b_reg[j] = tile_b[kk * TILE_N + lid.x + j * wg_x];
      }
      for (var i = 0u; i < THREAD_M; i++) {
        for (var j = 0u; j < THREAD_N; j++) {
          acc[i * MAX_THREAD + j] = fma(a_reg[i], b_reg[j], acc[i * MAX_THREAD + j]);
        }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < THREAD_M; i++) {
    let row = row0 + lid.y + i * wg_y;
    if (row >= params.m) {
      break;
    }
    for (var j = 0u; j < THREAD_N; j++) {
      let col = col0 + lid.x + j * wg_x;
      if (col >= params.n) {
        break;
      }
      var v = params.alpha * acc[i * MAX_THREAD + j];
      if (HAS_BIAS) {
        v += bias[col];
      }
      let index = row * params.n + col;
      if (STORE_PRE) {
        pre[index] = v;
      }
      let y = act_forward(v, ACT);
      if (ACCUMULATE) {
        c[index] += y;
      } else {
        c[index] = y;
      }
    }
  }
}
