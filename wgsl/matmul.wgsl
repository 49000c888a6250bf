// Matmul with a fused epilogue, f32, all matrices row-major and densely packed:
//   C[M,N] (=|+=) act( alpha · op(A)·op(B) + bias[N] ),   pre[M,N] = alpha · op(A)·op(B) + bias
// in the three layouts a linear layer needs (LAYOUT override):
//   0 nn: A[M,K]  · B[K,N]     (dX = dY·W, W stored [out,in])
//   1 nt: A[M,K]  · B[N,K]ᵀ    (forward Y = X·Wᵀ)
//   2 tn: A[K,M]ᵀ · B[K,N]     (dW = dYᵀ·X)
// BATCHED: params.batch independent products in one dispatch (workgroup z = the product), operand
// z starting at element z·stride_a of a, z·stride_b of b and z·stride_c of c and pre (a stride of 0
// shares one operand across the batch: [B,M,K]·[K,N]); without it every offset is 0 (folded away).
// Epilogue overrides: HAS_BIAS adds bias[col]; ACT is an activation id of wgsl/activation.wgsl
// (0 identity); STORE_PRE writes the pre-activation (bias added) to `pre`; ACCUMULATE makes
// C += result (gradient accumulation) instead of C = result.
//
// Two strategies, one entry point each (the binding picks one per tile; core/ops/matmul.ts):
//   `main`   (shared): workgroup-memory tiles, the usual GPU kernel.
//   `direct` (direct): no barrier and no shared operand tiles; every invocation reads its
//            operands straight from global memory into a register tile of up to 32 × 32
//            outputs (workgroup memory only stages each invocation's own epilogue).
//
// Bindings (every one statically used by its entry point, so `layout: "auto"` keeps them all;
// unused bias/pre/a4/b4 get a small dummy buffer):
//   0 a: array<A_T> (M·K)   1 b: array<B_T> (K·N)   2 c: array<C_T> (M·N), read_write
//   3 bias: array<BIAS_T> (N)  4 pre: array<C_T> (M·N), read_write
//   5 params {m, n, k, alpha, batch, stride_a, stride_b, stride_c}
//   `direct` only: 6 a4, 7 b4: arrays of vec4, the same bytes as a and b viewed as vec4
//   (VEC4_A: tn with M % 4 = 0; VEC4_B: nn or tn with N % 4 = 0), else dummies.
//
// Storage types (aliases, see core/kernels.ts withStorage): A_T (a, a4), B_T (b, b4), C_T (c,
// pre), BIAS_T (bias) are f32 or f16; loads convert to f32, every sum accumulates in f32, and the
// epilogue rounds once when it stores (C += reads C back in f32 first).
//
// Every output sums k = 0..K-1 in order with fma from 0 in both strategies, so they agree up to
// what a compiler reassociates (none on llvmpipe).
//
// `main`: a workgroup of (TILE_N / THREAD_N, TILE_M / THREAD_M) invocations computes a
// TILE_M × TILE_N block of C, walking K in steps of TILE_K through workgroup memory
// ((TILE_M + TILE_N)·TILE_K floats ≤ 16 KiB). Each invocation holds a THREAD_M × THREAD_N
// register tile (at most 8 × 8) whose rows and columns are strided by the workgroup's height and
// width, so neighbouring invocations read neighbouring words of the tiles (no bank conflicts) and
// write neighbouring words of C (coalesced). Loads outside [M, N, K] read 0, so any sizes work
// (including 1). Dispatch: (ceil(N / TILE_N), ceil(M / TILE_M), batch) workgroups.
//
// `direct`: a workgroup is a line of DIRECT_WG = (TILE_M / THREAD_M)·(TILE_N / THREAD_N)
// invocations; invocation g (global, row-major over x then y) owns register tile g of C in
// row-major order: THREAD_M contiguous rows × THREAD_N contiguous columns (multiples of 4, at
// most 32), held as 4 × 4 blocks of vec4 accumulators. Each k step loads THREAD_M values of op(A)
// and THREAD_N of op(B) and does THREAD_M·THREAD_N fma. On llvmpipe (one workgroup = one CPU
// thread, invocations = SIMD lanes along x) every load is a per-lane scalar loop costing ~20
// cycles per lane whatever its address, so the loads per fma, (THREAD_M + THREAD_N) /
// (THREAD_M·THREAD_N), set the speed: 32 × 32 measured ~7× the shared kernel there. The block
// functions are called with constant indices and guarded by override comparisons, so after
// inlining every accumulator index is a constant and the tile is never indexed memory (loops over
// the tile left indexed arrays: ~3× slower, and minutes to compile at 32 × 32). Rows past M and
// columns past N read the last row/column (clamped, never stored); K is walked exactly, nothing is
// padded. Dispatch: ceil(tiles / DIRECT_WG) workgroups, split over x and y above 65535
// (core/kernels.ts grid), tiles = ceil(M / THREAD_M)·ceil(N / THREAD_N); z = batch.

//!include activation

alias A_T = f32;
alias B_T = f32;
alias C_T = f32;
alias BIAS_T = f32;

struct MatmulParams {
  m: u32,
  n: u32,
  k: u32,
  alpha: f32,
  batch: u32,
  stride_a: u32,
  stride_b: u32,
  stride_c: u32,
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
// `direct` only: load op(A) row quads / op(B) column quads as one vec4 (see the header).
override VEC4_A: bool = false;
override VEC4_B: bool = false;
override BATCHED: bool = false;

// Register tiles of `main` are function-scope arrays, which need a constant size: the largest
// allowed.
const MAX_THREAD: u32 = 8u;

@group(0) @binding(0) var<storage, read> a: array<A_T>;
@group(0) @binding(1) var<storage, read> b: array<B_T>;
@group(0) @binding(2) var<storage, read_write> c: array<C_T>;
@group(0) @binding(3) var<storage, read> bias: array<BIAS_T>;
@group(0) @binding(4) var<storage, read_write> pre: array<C_T>;
@group(0) @binding(5) var<uniform> params: MatmulParams;
@group(0) @binding(6) var<storage, read> a4: array<vec4<A_T>>;
@group(0) @binding(7) var<storage, read> b4: array<vec4<B_T>>;

// The current product's first elements of a, b and c (0 unless BATCHED).
var<private> base_a: u32;
var<private> base_b: u32;
var<private> base_c: u32;

// Sets the bases of product z of the batch.
fn set_batch(z: u32) {
  if (BATCHED) {
    base_a = z * params.stride_a;
    base_b = z * params.stride_b;
    base_c = z * params.stride_c;
  }
}

// The epilogue of one output: C[row, col] (=|+=) act(alpha·sum + bias[col]), pre = the argument.
fn finish(row: u32, col: u32, sum: f32) {
  var v = params.alpha * sum;
  if (HAS_BIAS) {
    v += f32(bias[col]);
  }
  let index = base_c + row * params.n + col;
  if (STORE_PRE) {
    pre[index] = C_T(v);
  }
  let y = act_forward(v, ACT);
  if (ACCUMULATE) {
    c[index] = C_T(f32(c[index]) + y);
  } else {
    c[index] = C_T(y);
  }
}

// ---------------------------------------------------------------------------------------------
// `main`: shared-memory tiles.

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
    return f32(a[base_a + kk * params.m + row]);
  }
  return f32(a[base_a + row * params.k + kk]);
}

// op(B)[kk, col], or 0 outside the matrix.
fn load_b(kk: u32, col: u32) -> f32 {
  if (kk >= params.k || col >= params.n) {
    return 0.0;
  }
  if (LAYOUT == 1u) {
    return f32(b[base_b + col * params.k + kk]);
  }
  return f32(b[base_b + kk * params.n + col]);
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
  set_batch(wid.z);
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
      finish(row, col, acc[i * MAX_THREAD + j]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// `direct`: register tiles read straight from global memory. Quad p covers rows
// d_row0 + 4p .. +3, quad q columns d_col0 + 4q .. +3; only quads below QUADS_M / QUADS_N exist.

override QUADS_M: u32 = THREAD_M / 4u;
override QUADS_N: u32 = THREAD_N / 4u;
override DIRECT_WG: u32 = (TILE_M / THREAD_M) * (TILE_N / THREAD_N);

// d_accP holds row quad P of the tile: element r·8 + q is row 4P + r, column quad q. One array per
// row quad: a single 256-element array took ~15 s to compile at 32 × 32.
alias RowQuad = array<vec4<f32>, 32>;
var<private> d_acc0: RowQuad;
var<private> d_acc1: RowQuad;
var<private> d_acc2: RowQuad;
var<private> d_acc3: RowQuad;
var<private> d_acc4: RowQuad;
var<private> d_acc5: RowQuad;
var<private> d_acc6: RowQuad;
var<private> d_acc7: RowQuad;
// This k step's op(B) column quads and the op(A) row quad being applied.
var<private> d_b: array<vec4<f32>, 8>;
var<private> d_a: vec4<f32>;
// The tile's first row and column, and this invocation's first element of d_stage.
var<private> d_row0: u32;
var<private> d_col0: u32;
var<private> d_slice: u32;
// Epilogue staging: 4 rows × THREAD_N columns per invocation (vec4 = 4 columns). The max keeps the
// size positive in pipelines of `main`, whose register tiles may be narrower than 4.
var<workgroup> d_stage: array<vec4<f32>, DIRECT_WG * 4u * max(QUADS_N, 1u)>;

// op(A)[row, kk] with the row clamped into the matrix.
fn d_load_a1(row: u32, kk: u32) -> f32 {
  let r = min(row, params.m - 1u);
  if (LAYOUT == 2u) {
    return f32(a[base_a + kk * params.m + r]);
  }
  return f32(a[base_a + r * params.k + kk]);
}

// op(B)[kk, col] with the column clamped into the matrix.
fn d_load_b1(kk: u32, col: u32) -> f32 {
  let j = min(col, params.n - 1u);
  if (LAYOUT == 1u) {
    return f32(b[base_b + j * params.k + kk]);
  }
  return f32(b[base_b + kk * params.n + j]);
}

// op(A)[rows of quad p, kk]: one vec4 when A is [K,M] with M % 4 = 0, else four scalars.
fn d_load_a(p: u32, kk: u32) -> vec4<f32> {
  let r = d_row0 + 4u * p;
  if (VEC4_A) {
    return vec4<f32>(a4[(base_a + kk * params.m + min(r, params.m - 4u)) / 4u]);
  }
  return vec4(
    d_load_a1(r, kk),
    d_load_a1(r + 1u, kk),
    d_load_a1(r + 2u, kk),
    d_load_a1(r + 3u, kk),
  );
}

// op(B)[kk, columns of quad q] into d_b[q]: one vec4 when B is [K,N] with N % 4 = 0.
fn d_load_b(q: u32, kk: u32) {
  if (q < QUADS_N) {
    let j = d_col0 + 4u * q;
    if (VEC4_B) {
      d_b[q] = vec4<f32>(b4[(base_b + kk * params.n + min(j, params.n - 4u)) / 4u]);
    } else {
      d_b[q] = vec4(
        d_load_b1(kk, j),
        d_load_b1(kk, j + 1u),
        d_load_b1(kk, j + 2u),
        d_load_b1(kk, j + 3u),
      );
    }
  }
}

// The 4 × 4 block (row quad of `acc`, column quad q) += d_a ⊗ d_b[q].
fn d_block(acc: ptr<private, RowQuad>, q: u32) {
  if (q < QUADS_N) {
    let bq = d_b[q];
    (*acc)[q] = fma(vec4(d_a.x), bq, (*acc)[q]);
    (*acc)[8u + q] = fma(vec4(d_a.y), bq, (*acc)[8u + q]);
    (*acc)[16u + q] = fma(vec4(d_a.z), bq, (*acc)[16u + q]);
    (*acc)[24u + q] = fma(vec4(d_a.w), bq, (*acc)[24u + q]);
  }
}

fn d_row_quad(p: u32, acc: ptr<private, RowQuad>, kk: u32) {
  if (p < QUADS_M) {
    d_a = d_load_a(p, kk);
    d_block(acc, 0u);
    d_block(acc, 1u);
    d_block(acc, 2u);
    d_block(acc, 3u);
    d_block(acc, 4u);
    d_block(acc, 5u);
    d_block(acc, 6u);
    d_block(acc, 7u);
  }
}

// The epilogue of row quad p: its accumulators are copied (constant indices) to this
// invocation's slice of d_stage, and one loop over the slice applies `finish`. Unrolled, the 1024
// inlined epilogues (each with the activation library) took ~10 s to compile; a private array
// indexed at run time took ~20 s; workgroup memory is plain addressable memory. Each invocation
// touches only its own slice: no barrier.
fn d_stage_block(acc: ptr<private, RowQuad>, q: u32) {
  if (q < QUADS_N) {
    let base = d_slice + q;
    d_stage[base] = (*acc)[q];
    d_stage[base + QUADS_N] = (*acc)[8u + q];
    d_stage[base + 2u * QUADS_N] = (*acc)[16u + q];
    d_stage[base + 3u * QUADS_N] = (*acc)[24u + q];
  }
}

fn d_finish_row_quad(p: u32, acc: ptr<private, RowQuad>) {
  if (p < QUADS_M) {
    d_stage_block(acc, 0u);
    d_stage_block(acc, 1u);
    d_stage_block(acc, 2u);
    d_stage_block(acc, 3u);
    d_stage_block(acc, 4u);
    d_stage_block(acc, 5u);
    d_stage_block(acc, 6u);
    d_stage_block(acc, 7u);
    for (var i = 0u; i < 4u * THREAD_N; i++) {
      let r = i / THREAD_N;
      let j = i % THREAD_N;
      let row = d_row0 + 4u * p + r;
      let col = d_col0 + j;
      if (row < params.m && col < params.n) {
        finish(row, col, d_stage[d_slice + r * QUADS_N + j / 4u][j % 4u]);
      }
    }
  }
}

// One line of invocations: on llvmpipe the SIMD lanes run along x, so a 2-D workgroup narrower
// than 8 leaves lanes idle, and a rectangle of tiles idles where it overhangs M or N.
@compute @workgroup_size(DIRECT_WG)
fn direct(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  // Register tile g of C in row-major order (past the last one: rows past M, nothing stored).
  let g = gid.x + gid.y * nwg.x * DIRECT_WG;
  set_batch(gid.z);
  let tiles_n = (params.n + THREAD_N - 1u) / THREAD_N;
  d_row0 = (g / tiles_n) * THREAD_M;
  d_col0 = (g % tiles_n) * THREAD_N;
  d_slice = local_index * 4u * QUADS_N;
  for (var kk = 0u; kk < params.k; kk++) {
    d_load_b(0u, kk);
    d_load_b(1u, kk);
    d_load_b(2u, kk);
    d_load_b(3u, kk);
    d_load_b(4u, kk);
    d_load_b(5u, kk);
    d_load_b(6u, kk);
    d_load_b(7u, kk);
    d_row_quad(0u, &d_acc0, kk);
    d_row_quad(1u, &d_acc1, kk);
    d_row_quad(2u, &d_acc2, kk);
    d_row_quad(3u, &d_acc3, kk);
    d_row_quad(4u, &d_acc4, kk);
    d_row_quad(5u, &d_acc5, kk);
    d_row_quad(6u, &d_acc6, kk);
    d_row_quad(7u, &d_acc7, kk);
  }
  d_finish_row_quad(0u, &d_acc0);
  d_finish_row_quad(1u, &d_acc1);
  d_finish_row_quad(2u, &d_acc2);
  d_finish_row_quad(3u, &d_acc3);
  d_finish_row_quad(4u, &d_acc4);
  d_finish_row_quad(5u, &d_acc5);
  d_finish_row_quad(6u, &d_acc6);
  d_finish_row_quad(7u, &d_acc7);
}
