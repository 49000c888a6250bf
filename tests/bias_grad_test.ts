import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { biasGrad, biasGradColumns } from "../core/ops/bias_grad.ts";
import { biasAddRef, biasGradRef, maxAbsColumnSum } from "./reference/bias_grad.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { dot, numericGradient } from "./helpers/finite_difference.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { f64, integers, uniformF32 } from "./helpers/random.ts";

// (m, n): single element, odd shapes around the 8-column blocks and 32-row lanes, a tall batch with
// a narrow bias, and a tall and wide layer (the largest).
const SHAPES: [number, number][] = [[1, 1], [7, 33], [257, 130], [4099, 7], [4096, 1024]];

/**
 * Random multiples of 1/8 in [−1.875, 1.875], never 0. Every partial sum of up to 4099 of them is
 * a multiple of 1/8 below 2^13, exact in float32, so the kernel's sums must equal the float64
 * reference bit for bit whatever its summation order: a missed or doubled element cannot hide
 * inside a rounding tolerance.
 */
function dyadic(count: number, seed: number): Float32Array {
  return Float32Array.from(integers(count, 16, seed), (k) => (k - 7.5) / 4);
}

/**
 * A rigorous bound on the float32 rounding error of any summation whose every term passes
 * through at most d additions: |error| ≤ d·u·Σ|terms| (u = 2^-24, to first order; Higham,
 * "Accuracy and Stability of Numerical Algorithms", §4.2). In the kernel a term passes through at
 * most ⌈m / rows⌉ additions in its lane (rows = 256 / columns; fewer with its four accumulators),
 * 2 to combine the accumulators, log2(rows) in the workgroup tree and 1 when accumulating. For
 * m = 4099 at 8 columns that is ~140·u·Σ|dy| ≈ 1.7e-2 on sums of ~40: loose, but the dyadic tests
 * above check every element exactly; this one checks ordinary floats are not mishandled.
 */
function sumTolerance(m: number, columns: number, scale: number): number {
  const rows = 256 / columns;
  const depth = Math.ceil(m / rows) + 2 + Math.log2(rows) + 1;
  return 1.01 * depth * 2 ** -24 * scale;
}

async function runBiasGrad(
  dy: Float32Array,
  m: number,
  n: number,
  opts: { dbIn?: Float32Array; columns?: number } = {},
): Promise<Float32Array> {
  const { gpu, kernels } = await testGpu();
  const dyb = gpu.storage("bias_grad dy", dy);
  const db = opts.dbIn ? gpu.storage("bias_grad db", opts.dbIn) : poisoned(gpu, "bias_grad db", n);
  submitDispatches(gpu, [
    await biasGrad(kernels, { dy: dyb, db, m, n, accumulate: !!opts.dbIn, columns: opts.columns }),
  ]);
  const out = await gpu.readF32(db, n);
  dyb.destroy();
  db.destroy();
  return out;
}

Deno.test("bias_grad reference: db = Σ_rows dy matches finite differences of the bias add", () => {
  const [m, n] = [5, 9];
  const x = f64(uniformF32(m * n, 1, -1, 1));
  const w = f64(uniformF32(m * n, 2, -1, 1)); // dy, the weights of the scalar Σ w·y
  const b = f64(uniformF32(n, 3, -1, 1));
  const numeric = numericGradient((bias) => dot(w, biasAddRef(x, bias, m, n)), b);
  assertClose(biasGradRef(w, m, n), numeric, {
    atol: 1e-8,
    rtol: 1e-7,
    label: `bias_grad reference vs finite differences m=${m} n=${n}`,
  });
});

Deno.test("bias_grad: exact column sums of dyadic values", async () => {
  for (const [m, n] of SHAPES) {
    const dy = dyadic(m * n, m + n);
    assertClose(await runBiasGrad(dy, m, n), biasGradRef(dy, m, n), {
      atol: 0,
      rtol: 0,
      label: `bias_grad exact m=${m} n=${n} columns=${biasGradColumns(n)}`,
    });
  }
});

Deno.test("bias_grad: random floats within the float32 summation bound", async () => {
  for (const [m, n] of SHAPES) {
    const dy = uniformF32(m * n, 3 * m + n, -1, 1);
    const atol = sumTolerance(m, biasGradColumns(n), maxAbsColumnSum(dy, m, n));
    assertClose(await runBiasGrad(dy, m, n), biasGradRef(dy, m, n), {
      atol,
      rtol: 0,
      label: `bias_grad m=${m} n=${n}`,
    });
  }
});

Deno.test("bias_grad accumulate: db += Σ_rows dy", async () => {
  for (const [m, n] of SHAPES) {
    const dy = dyadic(m * n, 5 * m + n);
    const dbIn = dyadic(n, 7 * n + 1);
    assertClose(await runBiasGrad(dy, m, n, { dbIn }), biasGradRef(dy, m, n, dbIn), {
      atol: 0,
      rtol: 0,
      label: `bias_grad accumulate exact m=${m} n=${n}`,
    });
    const dyF = uniformF32(m * n, 5 * m + n, -1, 1);
    const dbInF = uniformF32(n, 7 * n + 1, -4, 4);
    const atol = sumTolerance(m, biasGradColumns(n), maxAbsColumnSum(dyF, m, n, dbInF));
    assertClose(await runBiasGrad(dyF, m, n, { dbIn: dbInF }), biasGradRef(dyF, m, n, dbInF), {
      atol,
      rtol: 0,
      label: `bias_grad accumulate m=${m} n=${n}`,
    });
  }
});

Deno.test("bias_grad: every columns-per-workgroup variant", async () => {
  for (const columns of [1, 2, 4, 8, 16, 32, 64, 128, 256]) {
    for (const [m, n] of [[257, 130], [33, 7]] as const) {
      const dy = dyadic(m * n, columns + m);
      assertClose(await runBiasGrad(dy, m, n, { columns }), biasGradRef(dy, m, n), {
        atol: 0,
        rtol: 0,
        label: `bias_grad exact m=${m} n=${n} columns=${columns}`,
      });
    }
  }
});

Deno.test("bias_grad: more than 65535 workgroups split over x and y", async () => {
  // One column per workgroup and 70 000 columns: grid() splits the workgroups over two dimensions.
  const [m, n] = [3, 70_000];
  const dy = dyadic(m * n, 9);
  assertClose(await runBiasGrad(dy, m, n, { columns: 1 }), biasGradRef(dy, m, n), {
    atol: 0,
    rtol: 0,
    label: `bias_grad exact m=${m} n=${n} columns=1`,
  });
});

Deno.test("bias_grad on ranges: db inside a flat gradient buffer, the rest untouched", async () => {
  const { gpu, kernels } = await testGpu();
  const [m, n] = [33, 130];
  // 256-byte offsets: WebGPU's minStorageBufferOffsetAlignment.
  const dy = dyadic(m * n, 21);
  const dyArena = gpu.storage("bias_grad dy arena", 256 + dy.byteLength + 64);
  gpu.write(dyArena, dy, 256);
  const flat = dyadic(64 + n + 50, 22);
  const grads = gpu.storage("bias_grad flat gradients", flat);
  for (const accumulate of [false, true]) {
    const before = await gpu.readF32(grads, flat.length);
    submitDispatches(gpu, [
      await biasGrad(kernels, {
        dy: { buffer: dyArena, offset: 256, size: dy.byteLength },
        db: { buffer: grads, offset: 256, size: 4 * n },
        m,
        n,
        accumulate,
      }),
    ]);
    const expected = f64(before);
    expected.set(biasGradRef(dy, m, n, accumulate ? before.subarray(64, 64 + n) : undefined), 64);
    assertClose(await gpu.readF32(grads, flat.length), expected, {
      atol: 0,
      rtol: 0,
      label: `bias_grad ${accumulate ? "accumulate " : ""}range m=${m} n=${n}`,
    });
  }
  dyArena.destroy();
  grads.destroy();
});

Deno.test("bias_grad binding rejects bad columns, short buffers and aliasing", async () => {
  const { gpu, kernels } = await testGpu();
  const dy = gpu.storage("short dy", 4 * 6);
  const db = gpu.storage("short db", 4 * 3);
  await assert.rejects(
    async () => await biasGrad(kernels, { dy, db, m: 2, n: 3, columns: 12 }),
    (e: Error) => e instanceof RangeError && e.message.includes("12"),
  );
  await assert.rejects(
    async () => await biasGrad(kernels, { dy, db, m: 3, n: 3 }),
    (e: Error) => e instanceof RangeError && e.message.includes("short dy"),
  );
  await assert.rejects(
    async () =>
      await biasGrad(kernels, {
        dy: { buffer: dy, offset: 0, size: 8 },
        db: { buffer: dy, offset: 16, size: 8 },
        m: 1,
        n: 2,
      }),
    (e: Error) => e instanceof RangeError && e.message.includes("written"),
  );
  dy.destroy();
  db.destroy();
  for (const n of [1, 3, 7, 8, 130, 1024, 4096, 1 << 20]) {
    const cols = biasGradColumns(n);
    assert.ok(
      cols >= 1 && cols <= 64 && (cols & (cols - 1)) === 0 && cols < 2 * n,
      `biasGradColumns(${n}) = ${cols} is not a power of two in [1, 64] below 2n`,
    );
  }
});
