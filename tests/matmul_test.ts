import assert from "node:assert";
import { type Activation, ACTIVATIONS } from "../core/ops/activation_ids.ts";
import { matmul, type MatmulLayout, type MatmulTile } from "../core/ops/matmul.ts";
import { matmulRef } from "./reference/matmul.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { type MatmulCase, runMatmulCase, tolerance } from "./helpers/matmul_case.ts";
import { dot, numericGradient } from "./helpers/finite_difference.ts";
import { testGpu } from "./helpers/gpu.ts";
import { f64, uniformF32 } from "./helpers/random.ts";

const LAYOUTS: MatmulLayout[] = ["nn", "nt", "tn"];
// None a multiple of a tile side except 64 (one full tile next to a ragged one); K = 1000 walks
// 63 K steps of 16.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 33, 130],
  [33, 7, 257],
  [130, 257, 33],
  [257, 130, 7],
  [64, 65, 1000],
];

const name = (c: MatmulCase) => `matmul ${c.layout.toUpperCase()} M=${c.m} N=${c.n} K=${c.k}`;

Deno.test("matmul reference: nn and tn layouts are the gradients of nt (finite differences)", () => {
  // Y = X·Wᵀ + b (nt) with X[B,I], W[O,I]; for L = Σ dY⊙Y: dX = dY·W (nn), dW = dYᵀ·X (tn).
  const [batch, inputs, outputs] = [5, 7, 3];
  const x = f64(uniformF32(batch * inputs, 11));
  const w = f64(uniformF32(outputs * inputs, 12));
  const bias = f64(uniformF32(outputs, 13));
  const dy = f64(uniformF32(batch * outputs, 14));
  const loss = (xv: Float64Array, wv: Float64Array) =>
    dot(dy, matmulRef("nt", xv, wv, batch, outputs, inputs, { bias }).c);
  const opts = { atol: 1e-8, rtol: 1e-6 };
  assertClose(
    matmulRef("nn", dy, w, batch, inputs, outputs).c,
    numericGradient((xv) => loss(xv, w), x),
    { ...opts, label: "matmul reference NN = dX of NT" },
  );
  assertClose(
    matmulRef("tn", dy, x, outputs, inputs, batch).c,
    numericGradient((wv) => loss(x, wv), w),
    { ...opts, label: "matmul reference TN = dW of NT" },
  );
});

for (const layout of LAYOUTS) {
  Deno.test(`matmul ${layout}: every shape against float64`, async () => {
    for (const [m, n, k] of SHAPES) {
      const c: MatmulCase = { layout, m, n, k, seed: m * 1000 + n * 10 + k };
      const { got, expected } = await runMatmulCase(c);
      assertClose(got.c, expected.c, { ...tolerance(k), label: name(c) });
    }
  });
}

Deno.test("matmul padding: ±Inf in A or B reaches only the outputs the product sends it to", async () => {
  // The kernel pads tiles past M, N and K with zeros. A load that skipped its bounds check would
  // read the start of the next stored row instead; an Inf planted there turns 0·Inf into NaN in
  // outputs the float64 reference keeps finite (assertClose demands non-finite values match).
  for (const layout of LAYOUTS) {
    for (const [m, n, k] of [[33, 7, 257], [7, 33, 130], [257, 130, 7]] as const) {
      for (const infinities of ["a", "b"] as const) {
        const c: MatmulCase = { layout, m, n, k, seed: 500 + m + k, infinities };
        const { got, expected } = await runMatmulCase(c);
        const label = `${name(c)} Inf in ${infinities.toUpperCase()}`;
        assert.ok(expected.c.some((v) => !Number.isFinite(v)), `${label}: no Inf planted`);
        assertClose(got.c, expected.c, { ...tolerance(k), label });
      }
    }
  }
});

Deno.test("matmul epilogue: bias + each activation, pre-activation stored", async () => {
  // Pre-activations here are ~N(0, 2²) (√33/3 from the product plus the bias), covering the
  // activations' curved parts. An activation's slope is at most 1.76 (SELU left of 0) and its own
  // f32 evaluation adds ~1e-7 (GELU's A–S erf: 1.5e-7), hence twice the product's tolerance on C.
  const [m, n, k] = [130, 257, 33];
  const activations = Object.keys(ACTIVATIONS) as Activation[];
  for (const [i, activation] of activations.entries()) {
    const c: MatmulCase = {
      layout: LAYOUTS[i % 3]!,
      m,
      n,
      k,
      seed: 100 + i,
      bias: true,
      pre: true,
      activation,
    };
    const { got, expected } = await runMatmulCase(c);
    const tol = tolerance(k);
    const label = `${name(c)} bias ${activation}`;
    assertClose(got.pre!, expected.pre, { ...tol, label: `${label} pre` });
    assertClose(got.c, expected.c, { atol: 2 * tol.atol, rtol: 2 * tol.rtol, label });
  }
  // Without `pre`, the same epilogue writes the same C (a 16-byte dummy takes pre's binding).
  const c: MatmulCase = {
    layout: "nt",
    m: 33,
    n: 7,
    k: 257,
    seed: 120,
    bias: true,
    activation: "gelu",
  };
  const { got, expected } = await runMatmulCase(c);
  assertClose(got.c, expected.c, { ...tolerance(257), label: `${name(c)} bias gelu, no pre` });
});

Deno.test("matmul accumulate: C += result, encoded once and twice, C starting random", async () => {
  for (const [i, layout] of LAYOUTS.entries()) {
    for (const times of [1, 2]) {
      const [m, n, k] = SHAPES[1 + i + times]!;
      const plain: MatmulCase = {
        layout,
        m,
        n,
        k,
        seed: 200 + i * 10 + times,
        accumulateTimes: times,
      };
      const r = await runMatmulCase(plain);
      assertClose(r.got.c, r.expected.c, { ...tolerance(k), label: `${name(plain)} += ×${times}` });
    }
  }
  // Gradient accumulation of a layer with an epilogue: pre is the last run's value, not summed.
  const fused: MatmulCase = {
    layout: "nt",
    m: 130,
    n: 257,
    k: 33,
    seed: 230,
    bias: true,
    pre: true,
    activation: "silu",
    accumulateTimes: 2,
  };
  const { got, expected } = await runMatmulCase(fused);
  const tol = tolerance(33);
  assertClose(got.pre!, expected.pre, { ...tol, label: `${name(fused)} += silu pre` });
  assertClose(got.c, expected.c, {
    atol: 2 * tol.atol,
    rtol: 2 * tol.rtol,
    label: `${name(fused)} += silu`,
  });
});

Deno.test("matmul alpha: C = alpha·op(A)·op(B) (+ bias), each layout", async () => {
  for (const [i, layout] of LAYOUTS.entries()) {
    for (const alpha of [-0.37, 1 / 64]) {
      const [m, n, k] = SHAPES[2 + i]!;
      const c: MatmulCase = { layout, m, n, k, seed: 300 + i, alpha, bias: alpha > 0 };
      const { got, expected } = await runMatmulCase(c);
      assertClose(got.c, expected.c, {
        ...tolerance(k),
        label: `${name(c)} alpha=${alpha}${c.bias ? " bias" : ""}`,
      });
    }
  }
});

Deno.test("matmul tiles: several tile shapes give the reference's and each other's results", async () => {
  const tiles: Partial<MatmulTile>[] = [
    {}, // DEFAULT_MATMUL_TILE: shared, 64×64, K steps of 8, 8×8 per invocation
    { m: 32, n: 32, k: 8, threadM: 2, threadN: 2 },
    { m: 64, n: 64, k: 8, threadM: 8, threadN: 8 },
    { m: 16, n: 128, k: 12, threadM: 1, threadN: 8 },
    { m: 8, n: 8, k: 1, threadM: 1, threadN: 1 },
    // Direct: one invocation per workgroup; 8 × 2 quads; odd quad counts in a workgroup of 2.
    { strategy: "direct", m: 4, n: 4, threadM: 4, threadN: 4 },
    { strategy: "direct", m: 32, n: 64, threadM: 32, threadN: 8 },
    { strategy: "direct", m: 24, n: 40, threadM: 12, threadN: 20 },
  ];
  for (const layout of LAYOUTS) {
    for (const [m, n, k] of [[33, 7, 257], [257, 130, 7], [1, 1, 1]] as const) {
      let first: Float32Array | undefined;
      for (const [t, tile] of tiles.entries()) {
        const c: MatmulCase = { layout, m, n, k, seed: 400 + m + k, tile, bias: true };
        const { got, expected } = await runMatmulCase(c);
        const label = `${name(c)} tile ${JSON.stringify(tile)}`;
        assertClose(got.c, expected.c, { ...tolerance(k), label });
        // Every tile of either strategy sums k = 0..K−1 in the same order with fma from 0, so the
        // results are identical here (llvmpipe); a tenth of the reference tolerance leaves room
        // for a compiler that reassociates, and is still far below any indexing error.
        const tight = { atol: 1e-6 * Math.sqrt(k), rtol: 1e-5 };
        if (t === 0) first = got.c;
        else assertClose(got.c, first!, { ...tight, label: `${label} vs default` });
      }
    }
  }
});

/** Asserts that `promise` rejects with a RangeError whose message matches `pattern`. */
async function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof RangeError, `expected a RangeError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("matmul errors: shape mismatches, bad tiles and grids reject with clear messages", async () => {
  const { gpu, kernels } = await testGpu();
  const a = gpu.storage("X", 7 * 5 * 4);
  const b = gpu.storage("W", 3 * 5 * 4);
  const c = gpu.storage("Y", 7 * 3 * 4);
  const small = gpu.storage("small", 8);
  const base = { a, b, c, m: 7, n: 3, k: 5, layout: "nt" as const, label: "fc1" };
  try {
    await matmul(kernels, base); // the shapes fit: no error
    await rejectsWith(
      matmul(kernels, { ...base, k: 6 }),
      /matmul "fc1": buffer "X" \(a\) holds 140 bytes but nt M=7 N=3 K=6 needs A\[M=7,K=6\] = 42 f32 values \(168 bytes\)/,
    );
    await rejectsWith(matmul(kernels, { ...base, n: 4 }), /buffer "W" \(b\) holds 60 bytes/);
    await rejectsWith(matmul(kernels, { ...base, c: small }), /buffer "small" \(c\) holds 8/);
    await rejectsWith(
      matmul(kernels, { ...base, bias: small }),
      /buffer "small" \(bias\) holds 8 bytes but nt M=7 N=3 K=5 needs bias\[N=3\]/,
    );
    await rejectsWith(matmul(kernels, { ...base, pre: small }), /"small" \(pre\)/);
    await rejectsWith(
      matmul(kernels, { ...base, a: { buffer: a, offset: 256 } }),
      /buffer "X" \(a\): offset 256 lies past its end \(140 bytes\)/,
    );
    await rejectsWith(matmul(kernels, { ...base, c: a }), /"X" is bound as c \(written\)/);
    await rejectsWith(matmul(kernels, { ...base, m: 0 }), /M must be a positive integer, got 0/);
    await rejectsWith(
      matmul(kernels, { ...base, layout: "tt" as MatmulLayout }),
      /unknown layout "tt"/,
    );
    await rejectsWith(
      matmul(kernels, { ...base, tile: { m: 64, n: 64, k: 64 } }),
      /needs 32768 bytes of workgroup memory, more than 16384/,
    );
    await rejectsWith(
      matmul(kernels, { ...base, tile: { m: 30, threadM: 4 } }),
      /m must be a multiple of threadM/,
    );
    await rejectsWith(
      matmul(kernels, { ...base, tile: { threadN: 16, n: 64 } }),
      /register tile above 8 × 8/,
    );
    // The shared strategy's grid is a rectangle of workgroups; direct grids split over y instead
    // (matmul_variants_test.ts).
    await rejectsWith(
      matmul(kernels, { ...base, m: 65536 * 64, tile: { m: 64, n: 64 } }),
      /nt M=4194304 N=3 K=5 with a 64 × 64 tile needs 1 × 65536 workgroups/,
    );
    await rejectsWith(
      matmul(kernels, { ...base, tile: { strategy: "direct", threadM: 6, m: 48 } }),
      /a direct register tile's sides must be multiples of 4 up to 32/,
    );
    await rejectsWith(
      matmul(kernels, { ...base, tile: { strategy: "direct", threadN: 36, n: 288 } }),
      /"threadN":36.*multiples of 4 up to 32/,
    );
    await rejectsWith(
      matmul(kernels, {
        ...base,
        tile: { strategy: "direct", m: 32, n: 256, threadM: 4, threadN: 32 },
      }),
      /needs 32768 bytes of workgroup memory, more than 16384/,
    );
    await rejectsWith(
      matmul(kernels, { ...base, tile: { strategy: "tiled" as "direct" } }),
      /unknown tile strategy "tiled"; known are "direct", "shared"/,
    );
  } finally {
    for (const buffer of [a, b, c, small]) buffer.destroy();
  }
});
