/**
 * f16 storage (Issue 6): every kernel the training step runs with f16 values, against float64 on
 * the f16-rounded inputs. Values (weights, activations, logits) are stored as f16 and gradients as
 * f32; every kernel computes in f32. Tolerances add the f16 rounding of stored outputs (half an
 * ulp: relative 2⁻¹¹ ≈ 4.9e-4) to each kernel's f32 tolerance.
 */

import assert from "node:assert";
import { GpuError, storageArray } from "../core/gpu/device.ts";
import { type KernelSource, submitDispatches, withStorage } from "../core/gpu/kernels.ts";
import { activationBackward, activationForward } from "../core/ops/activation.ts";
import { dropoutForward } from "../core/ops/dropout.ts";
import { dropPathForward } from "../core/ops/drop_path.ts";
import { add, scale } from "../core/ops/elementwise.ts";
import { gatherBatch, packBytes } from "../core/ops/gather.ts";
import {
  LAYERNORM_EPS,
  layernormBackwardInput,
  layernormBackwardParams,
  layernormForward,
} from "../core/ops/layernorm.ts";
import type { MatmulLayout, MatmulStorage } from "../core/ops/matmul.ts";
import { DEFAULT_MATMUL_TILE, MATMUL_FALLBACK_SMALL_TILE } from "../core/ops/matmul.ts";
import { mixup } from "../core/ops/mixup.ts";
import { softmaxCrossEntropy } from "../core/ops/softmax_cross_entropy.ts";
import { activationBackwardRef, activationForwardRef } from "./reference/activation.ts";
import { alphaDropoutForwardRef, dropoutForwardRef, dropoutMaskRef } from "./reference/dropout.ts";
import { dropPathRef, dropPathScalesRef } from "./reference/drop_path.ts";
import { addRef, scaleRef } from "./reference/elementwise.ts";
import { gatherRef } from "./reference/gather.ts";
import { layernormBackwardRef, layernormForwardRef } from "./reference/layernorm.ts";
import { mixupRef } from "./reference/mixup.ts";
import { softmaxCrossEntropyRef } from "./reference/softmax_cross_entropy.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, poisonedU32, storedAs, testGpu } from "./helpers/gpu.ts";
import { type MatmulCase, runMatmulCase, tolerance } from "./helpers/matmul_case.ts";
import { integers, normalF32, uniformF32 } from "./helpers/random.ts";

const LAYOUTS: MatmulLayout[] = ["nn", "nt", "tn"];

/** Half an f16 ulp, relative. */
const F16_RTOL = 2 ** -11;

Deno.test("f16 storage: the loader retargets declared aliases only, and says which it lacks", async () => {
  const kernel: KernelSource = {
    name: "probe",
    code: "alias X_T = f32;\nalias Y_T = f32;\n@compute @workgroup_size(1) fn main() {}\n",
  };
  assert.strictEqual(withStorage(kernel, { X_T: "f32" }), kernel, "all f32: the same source");
  const half = withStorage(kernel, { X_T: "f16" });
  assert.ok(half.code.startsWith("enable f16;\n"), half.code);
  assert.match(half.code, /^alias X_T = f16;$/m);
  assert.match(half.code, /^alias Y_T = f32;$/m);
  assert.throws(
    () => withStorage(kernel, { Z_T: "f16" }),
    (e: Error) =>
      e instanceof GpuError && /kernel "probe".*Z_T.*alias Z_T = f32.*X_T, Y_T/.test(e.message),
  );
  const { gpu } = await testGpu();
  const noF16 = { ...gpu, has: () => false, report: gpu.report } as unknown as typeof gpu;
  assert.throws(
    () => withStorage(kernel, { X_T: "f16" }, noF16),
    (e: Error) => /shader-f16.*precision "f32"/.test(e.message),
  );
});

/**
 * Matmul with f16 values: C (and pre) rounded once when stored: F16_RTOL relative on top of the
 * f32 product's tolerance. Accumulating into an f16 C rounds after each add, and the running sum
 * can be ~8 before it cancels to a small result: an absolute half-ulp at 8 (2⁻⁸) per add.
 */
function f16Tolerance(c: MatmulCase): { atol: number; rtol: number } {
  const f32 = tolerance(c.k);
  if (c.storage?.c !== "f16") return f32;
  const adds = c.accumulateTimes ?? 0;
  const act = c.activation && c.activation !== "identity" ? 2 : 1;
  return { atol: act * f32.atol + adds * 2 ** -8, rtol: act * f32.rtol + 2 * F16_RTOL };
}

async function checkF16(c: MatmulCase, label: string): Promise<void> {
  const { got, expected } = await runMatmulCase(c);
  const tol = f16Tolerance(c);
  if (got.pre) assertClose(got.pre, expected.pre, { ...tol, label: `${label}: pre` });
  assertClose(got.c, expected.c, { ...tol, label });
}

// The training step's three uses: forward (x, W, b, y, pre all f16), dW (f32 gradient · f16
// activations → f32) and dX (f32 gradient · f16 weights → f32).
const USES: { name: string; storage: MatmulStorage; fused: boolean }[] = [
  { name: "values f16", storage: { a: "f16", b: "f16", c: "f16", bias: "f16" }, fused: true },
  { name: "f32 · f16 → f32", storage: { a: "f32", b: "f16" }, fused: false },
  { name: "f16 · f32 → f32", storage: { a: "f16", b: "f32" }, fused: false },
];

for (const tile of [DEFAULT_MATMUL_TILE, MATMUL_FALLBACK_SMALL_TILE]) {
  for (const use of USES) {
    Deno.test(`f16 matmul ${tile.strategy} ${use.name}: every layout against float64`, async () => {
      for (const [i, layout] of LAYOUTS.entries()) {
        // [36, 132, 33]: vec4 loads in direct nn/tn; [33, 7, 257]: scalar loads, ragged tiles.
        const shapes: [number, number, number][] = [[36, 132, 33], [33, 7, 257]];
        for (const [m, n, k] of shapes) {
          const c: MatmulCase = {
            layout,
            m,
            n,
            k,
            seed: 300 + 10 * i + m,
            tile,
            storage: use.storage,
            ...(use.fused
              ? {
                bias: true,
                pre: true,
                activation: "gelu",
                accumulateTimes: i === 1 ? 2 : undefined,
              }
              : { accumulateTimes: 1 }),
          };
          await checkF16(c, `f16 matmul ${tile.strategy} ${use.name} ${layout} ${m}×${n}×${k}`);
        }
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The other kernels of the training step with f16 values. Each reference is float64 on the inputs
// as the kernel sees them (rounded to f16 where stored as f16). Tolerances: the f32 test's for
// outputs stored as f32; for outputs stored as f16, its rtol plus F16_OUT_RTOL.

/**
 * One f16 rounding of a stored output, with margin: half an ulp (2⁻¹¹) when rounding to nearest,
 * and WGSL lets a conversion take either neighbour, up to one ulp (2⁻¹⁰) relative.
 */
const F16_OUT_RTOL = 2 ** -10;

/** A tolerance with one f16 rounding of the output added. */
function withF16Output(tol: { atol: number; rtol: number }): { atol: number; rtol: number } {
  return { atol: tol.atol, rtol: tol.rtol + F16_OUT_RTOL };
}

/** Activation inputs in [−6, 6] and one in eight at ±[30, 60]; x[1] = 0 (relu's and selu's kink). */
function activationInputs(n: number, seed: number): Float32Array {
  const x = uniformF32(n, seed, -6, 6);
  const far = uniformF32(n, seed + 1, 30, 60);
  for (let i = 3; i < n; i += 8) x[i] = i % 16 === 3 ? far[i]! : -far[i]!;
  if (n > 2) x[1] = 0;
  return x;
}

Deno.test("f16 activation forward (x, y f16) and backward (x f16, dy, dx f32) against float64", async () => {
  const { gpu, kernels } = await testGpu();
  // tests/activation_test.ts: atol 1e-5, rtol 1e-4 (erf approximation and f32 exp/tanh ulps).
  const tol = { atol: 1e-5, rtol: 1e-4 };
  for (const activation of ["relu", "gelu", "gelu_tanh", "selu", "sigmoid", "silu"] as const) {
    for (const n of [7, 1031]) {
      const x = storedAs(activationInputs(n, n + 3), "f16");
      const dy = uniformF32(n, n + 5, -2, 2);
      const xb = gpu.storage("f16 activation x", storageArray(x, "f16"));
      const dyb = gpu.storage("f16 activation dy", dy);
      const y = poisoned(gpu, "f16 activation y", n, "f16");
      const dx = poisoned(gpu, "f16 activation dx", n);
      const dxAcc = gpu.storage("f16 activation dx accumulate", uniformF32(n, n + 7, -1, 1));
      const args = { x: xb, n, activation, storage: "f16" } as const;
      submitDispatches(gpu, [
        await activationForward(kernels, { ...args, y }),
        await activationBackward(kernels, { ...args, dy: dyb, dx }),
        await activationBackward(kernels, { ...args, dy: dyb, dx: dxAcc, accumulate: true }),
      ]);
      const label = `f16 activation ${activation} n=${n}`;
      assertClose(await gpu.readValues(y, n, "f16"), activationForwardRef(activation, x), {
        ...withF16Output(tol),
        label: `${label} forward`,
      });
      assertClose(await gpu.readF32(dx, n), activationBackwardRef(activation, x, dy), {
        ...tol,
        label: `${label} backward`,
      });
      const dxIn = uniformF32(n, n + 7, -1, 1);
      assertClose(await gpu.readF32(dxAcc, n), activationBackwardRef(activation, x, dy, dxIn), {
        ...tol,
        label: `${label} backward accumulate`,
      });
      for (const b of [xb, dyb, y, dx, dxAcc]) b.destroy();
    }
  }
});

// Not multiples of the lane counts; 2 × 1031 has one workgroup loop over a row.
const F16_LAYERNORM_SHAPES: [number, number][] = [[1, 7], [7, 33], [5, 257], [2, 1031]];

/** LayerNorm inputs (tests/layernorm_test.ts) rounded to f16: x, γ, β stored as f16; dy f32. */
function layernormF16Inputs(rows: number, cols: number, seed: number) {
  return {
    x: storedAs(normalF32(rows * cols, seed, 1.7).map((v) => v + 0.3), "f16"),
    gamma: storedAs(uniformF32(cols, seed + 1, -1.5, 1.5), "f16"),
    beta: storedAs(uniformF32(cols, seed + 2, -0.5, 0.5), "f16"),
    dy: uniformF32(rows * cols, seed + 3, -1, 1),
  };
}

Deno.test("f16 layernorm forward: y f16 (x, γ, β f16), mean and rstd f32, against float64", async () => {
  const { gpu, kernels } = await testGpu();
  // tests/layernorm_test.ts: atol 2e-5, rtol 1e-4 (f32 tree sums over the row).
  const tol = { atol: 2e-5, rtol: 1e-4 };
  for (const [rows, cols] of F16_LAYERNORM_SHAPES) {
    const data = layernormF16Inputs(rows, cols, 100 + rows * cols);
    const buffers = {
      x: gpu.storage("f16 layernorm x", storageArray(data.x, "f16")),
      gamma: gpu.storage("f16 layernorm gamma", storageArray(data.gamma, "f16")),
      beta: gpu.storage("f16 layernorm beta", storageArray(data.beta, "f16")),
      y: poisoned(gpu, "f16 layernorm y", rows * cols, "f16"),
      mean: poisoned(gpu, "f16 layernorm mean", rows),
      rstd: poisoned(gpu, "f16 layernorm rstd", rows),
    };
    submitDispatches(gpu, [
      await layernormForward(kernels, {
        ...buffers,
        rows,
        cols,
        storage: { x: "f16", params: "f16" },
      }),
    ]);
    const ref = layernormForwardRef(data.x, data.gamma, data.beta, rows, cols, LAYERNORM_EPS);
    const label = `f16 layernorm forward M=${rows} C=${cols}`;
    assertClose(await gpu.readValues(buffers.y, rows * cols, "f16"), ref.y, {
      ...withF16Output(tol),
      label: `${label} y`,
    });
    assertClose(await gpu.readF32(buffers.mean, rows), ref.mean, {
      ...tol,
      label: `${label} mean`,
    });
    assertClose(await gpu.readF32(buffers.rstd, rows), ref.rstd, {
      ...tol,
      label: `${label} rstd`,
    });
    for (const b of Object.values(buffers)) b.destroy();
  }
});

Deno.test("f16 layernorm backward_input and backward_params (x, γ f16; gradients f32) against float64", async () => {
  const { gpu, kernels } = await testGpu();
  for (const [rows, cols] of [...F16_LAYERNORM_SHAPES, [129, 9] as [number, number]]) {
    const data = layernormF16Inputs(rows, cols, 3 * cols + rows);
    const saved = layernormForwardRef(data.x, data.gamma, data.beta, rows, cols, LAYERNORM_EPS);
    const ref = layernormBackwardRef(data.x, data.gamma, data.dy, rows, cols, LAYERNORM_EPS);
    const buffers = {
      x: gpu.storage("f16 layernorm x", storageArray(data.x, "f16")),
      gamma: gpu.storage("f16 layernorm gamma", storageArray(data.gamma, "f16")),
      dy: gpu.storage("f16 layernorm dy", data.dy),
      mean: gpu.storage("f16 layernorm mean", new Float32Array(saved.mean)),
      rstd: gpu.storage("f16 layernorm rstd", new Float32Array(saved.rstd)),
      dx: poisoned(gpu, "f16 layernorm dx", rows * cols),
      dgamma: poisoned(gpu, "f16 layernorm dgamma", cols),
      dbeta: poisoned(gpu, "f16 layernorm dbeta", cols),
    };
    const storage = { x: "f16", params: "f16" } as const;
    submitDispatches(gpu, [
      await layernormBackwardInput(kernels, { ...buffers, rows, cols, storage }),
      await layernormBackwardParams(kernels, { ...buffers, rows, cols, storage }),
    ]);
    const label = `f16 layernorm backward M=${rows} C=${cols}`;
    // tests/layernorm_test.ts: dx atol 2e-5·r (r = 1 here), rtol 1e-4; dγ and dβ are sums over
    // the rows: atol 2e-6·M + 1e-5, rtol 1e-4.
    assertClose(await gpu.readF32(buffers.dx, rows * cols), ref.dx, {
      atol: 2e-5,
      rtol: 1e-4,
      label: `${label} dx`,
    });
    const paramTol = { atol: 2e-6 * rows + 1e-5, rtol: 1e-4 };
    assertClose(await gpu.readF32(buffers.dgamma, cols), ref.dgamma, {
      ...paramTol,
      label: `${label} dgamma`,
    });
    assertClose(await gpu.readF32(buffers.dbeta, cols), ref.dbeta, {
      ...paramTol,
      label: `${label} dbeta`,
    });
    for (const b of Object.values(buffers)) b.destroy();
  }
});

// tests/elementwise_test.ts: atol 1e-7, rtol 1e-6 (one f32 rounding).
const ELEMENTWISE_TOL = { atol: 1e-7, rtol: 1e-6 };

Deno.test("f16 add (a, b, out f16) against float64", async () => {
  const { gpu, kernels } = await testGpu();
  for (const n of [7, 1031]) {
    const a = storedAs(uniformF32(n, 2 * n + 1, -2, 2), "f16");
    const b = storedAs(uniformF32(n, 3 * n + 5, -2, 2), "f16");
    const ab = gpu.storage("f16 add a", storageArray(a, "f16"));
    const bb = gpu.storage("f16 add b", storageArray(b, "f16"));
    const out = poisoned(gpu, "f16 add out", n, "f16");
    submitDispatches(gpu, [await add(kernels, { a: ab, b: bb, out, n, storage: "f16" })]);
    assertClose(await gpu.readValues(out, n, "f16"), addRef(a, b), {
      ...withF16Output(ELEMENTWISE_TOL),
      label: `f16 add n=${n}`,
    });
    for (const buffer of [ab, bb, out]) buffer.destroy();
  }
});

Deno.test("f16 scale: f32 → f16 conversion (alpha 1) and f16 → f32 with alpha ≠ 1", async () => {
  const { gpu, kernels } = await testGpu();
  for (const n of [7, 1031]) {
    // Magnitudes from 1e-3 to 1e3 (f16 normals, far from its 65504 limit).
    const x = uniformF32(n, n + 11, -3, 3).map((v, i) => v * 10 ** ((i % 7) - 3) / 3);
    const x32 = gpu.storage("f16 scale x f32", x);
    const x16 = gpu.storage("f16 scale x f16", storageArray(x, "f16"));
    const half = poisoned(gpu, "f16 scale out f16", n, "f16");
    const full = poisoned(gpu, "f16 scale out f32", n);
    const alpha = -0.3711;
    submitDispatches(gpu, [
      await scale(kernels, { x: x32, out: half, n, alpha: 1, storage: { x: "f32", out: "f16" } }),
      await scale(kernels, { x: x16, out: full, n, alpha, storage: { x: "f16", out: "f32" } }),
    ]);
    assertClose(await gpu.readValues(half, n, "f16"), scaleRef(x, 1), {
      ...withF16Output(ELEMENTWISE_TOL),
      label: `f16 scale f32 → f16 alpha=1 n=${n}`,
    });
    assertClose(await gpu.readF32(full, n), scaleRef(storedAs(x, "f16"), alpha), {
      ...ELEMENTWISE_TOL,
      label: `f16 scale f16 → f32 alpha=${alpha} n=${n}`,
    });
    for (const b of [x32, x16, half, full]) b.destroy();
  }
});

Deno.test("f16 dropout and alpha dropout forward (x, y f16): Philox mask, values vs float64", async () => {
  const { gpu, kernels } = await testGpu();
  const key = { seed: 0x5eed1234, stream: 3, step: 123_457 };
  const counters = gpu.storage("f16 dropout counters", new Uint32Array([11, key.step]));
  for (const alpha of [false, true]) {
    for (const n of [7, 1031]) {
      const p = 0.3;
      // 0.1 ≤ |x| ≤ 1.5 (tests/dropout_test.ts): a kept value never equals the dropped one.
      const x = storedAs(
        uniformF32(n, n + 17, -1.4, 1.4).map((v) => v < 0 ? v - 0.1 : v + 0.1),
        "f16",
      );
      const xb = gpu.storage("f16 dropout x", storageArray(x, "f16"));
      const y = poisoned(gpu, "f16 dropout y", n, "f16");
      submitDispatches(gpu, [
        await dropoutForward(kernels, {
          x: xb,
          y,
          n,
          p,
          alpha,
          seed: key.seed,
          stream: key.stream,
          counters,
          counterIndex: 1,
          storage: "f16",
        }),
      ]);
      const keep = dropoutMaskRef(n, p, key);
      const expected = alpha ? alphaDropoutForwardRef(x, keep, p) : dropoutForwardRef(x, keep, p);
      const got = await gpu.readValues(y, n, "f16");
      const label = `f16 ${alpha ? "alpha_dropout" : "dropout"}_forward n=${n} p=${p}`;
      // tests/dropout_test.ts: atol 1e-6, rtol 1e-6.
      assertClose(got, expected, { ...withF16Output({ atol: 1e-6, rtol: 1e-6 }), label });
      const dropped = storedAs(alpha ? alphaDropoutForwardRef([0], [0], p) : [0], "f16")[0];
      assert.deepStrictEqual(
        Uint8Array.from(got, (v) => v === dropped ? 0 : 1),
        keep,
        `${label} mask`,
      );
      xb.destroy();
      y.destroy();
    }
  }
  counters.destroy();
});

Deno.test("f16 drop_path forward (x, y f16): each row scaled by its f32 mask scale", async () => {
  const { gpu, kernels } = await testGpu();
  const key = { seed: 0x0d0c0b0a, stream: 5, step: 777 };
  for (const [rows, cols] of [[7, 33], [130, 9]] as const) {
    const n = rows * cols;
    const p = 0.3;
    const scales = dropPathScalesRef(rows, p, key);
    const x = storedAs(uniformF32(n, rows + cols, -2, 2), "f16");
    const xb = gpu.storage("f16 drop_path x", storageArray(x, "f16"));
    const y = poisoned(gpu, "f16 drop_path y", n, "f16");
    const sb = gpu.storage("f16 drop_path scales", Float32Array.from(scales));
    submitDispatches(gpu, [
      await dropPathForward(kernels, { rows, cols, p, x: xb, y, scales: sb, storage: "f16" }),
    ]);
    assertClose(await gpu.readValues(y, n, "f16"), dropPathRef(x, scales), {
      ...withF16Output({ atol: 0, rtol: 1e-7 }),
      label: `f16 drop_path_forward rows=${rows} cols=${cols}`,
    });
    for (const b of [xb, y, sb]) b.destroy();
  }
});

Deno.test("f16 softmax cross-entropy (logits f16, label smoothing): loss, correct, grad vs float64", async () => {
  const { gpu, kernels } = await testGpu();
  for (const [rows, classes] of [[7, 10], [5, 257], [33, 31]] as const) {
    const eps = 0.3;
    const n = rows * classes;
    const z = storedAs(normalF32(n, rows * 1000 + classes, 2), "f16");
    const labelValues = integers(rows, classes, rows * 1000 + classes + 1);
    const logits = gpu.storage("f16 sce logits", storageArray(z, "f16"));
    const labels = gpu.storage("f16 sce labels", labelValues);
    const loss = poisoned(gpu, "f16 sce loss", rows);
    const correct = poisoned(gpu, "f16 sce correct", rows);
    const grad = poisoned(gpu, "f16 sce grad", n);
    submitDispatches(gpu, [
      await softmaxCrossEntropy(kernels, {
        logits,
        labels,
        loss,
        correct,
        grad,
        rows,
        classes,
        labelSmoothing: eps,
        storage: "f16",
      }),
    ]);
    const want = softmaxCrossEntropyRef(z, labelValues, rows, classes, { labelSmoothing: eps });
    const label = `f16 softmax_cross_entropy B=${rows} K=${classes} ε=${eps}`;
    // tests/softmax_cross_entropy_test.ts: loss atol 1e-5, rtol 1e-5; correct exact; the gradient
    // with grad_scale (1/B) divided out: atol 1e-6, rtol 1e-4.
    assertClose(await gpu.readF32(loss, rows), want.loss, {
      atol: 1e-5,
      rtol: 1e-5,
      label: `${label} loss`,
    });
    assertClose(await gpu.readF32(correct, rows), want.correct, {
      atol: 0,
      rtol: 0,
      label: `${label} correct`,
    });
    const unscale = (g: ArrayLike<number>) => Float64Array.from(g, (v) => v * rows);
    assertClose(unscale(await gpu.readF32(grad, n)), unscale(want.grad), {
      atol: 1e-6,
      rtol: 1e-4,
      label: `${label} grad`,
    });
    for (const b of [logits, labels, loss, correct, grad]) b.destroy();
  }
});

Deno.test("f16 gather_batch (x f16): values vs float64, masked rows, labels", async () => {
  const { gpu, kernels } = await testGpu();
  const datasetRows = 53;
  for (const [d, channels] of [[7, 1], [3 * 7 * 7, 3]] as const) {
    const bytes = Uint8Array.from(integers(datasetRows * d, 256, d));
    const labelValues = integers(datasetRows, 256, d + 1);
    const mean = Array.from(uniformF32(channels, d + 7, 0.2, 0.6));
    const std = Array.from(uniformF32(channels, d + 8, 0.15, 0.35));
    const batch = 7;
    const indices = integers(2 * batch + 9, datasetRows, d + 2);
    const start = 5;
    const indexCount = start + 4; // rows 4..6 of the batch are masked
    const buffers = {
      data: gpu.storage("f16 gather data", packBytes(bytes)),
      labels: gpu.storage("f16 gather labels", labelValues),
      indices: gpu.storage("f16 gather indices", indices),
      cursor: gpu.storage("f16 gather cursor", new Uint32Array([start])),
      x: poisoned(gpu, "f16 gather x", batch * d, "f16"),
      y: poisonedU32(gpu, "f16 gather y", batch),
    };
    const shape = { batch, features: d, mean, std, indexCount };
    submitDispatches(gpu, [
      await gatherBatch(kernels, { ...buffers, ...shape, storage: "f16" }),
    ]);
    const expected = gatherRef({ ...shape, data: bytes, labels: labelValues, indices, start });
    const label = `f16 gather_batch D=${d} C=${channels} B=${batch}`;
    // tests/gather_test.ts: atol 2e-6, rtol 1e-6 (three f32 roundings of byte·scale + shift).
    assertClose(await gpu.readValues(buffers.x, batch * d, "f16"), expected.x, {
      ...withF16Output({ atol: 2e-6, rtol: 1e-6 }),
      label,
    });
    assert.deepStrictEqual(await gpu.readU32(buffers.y, batch), expected.y, `${label} labels`);
    for (const b of Object.values(buffers)) b.destroy();
  }
});

Deno.test("f16 mixup (x f16, in place) against float64", async () => {
  const { gpu, kernels } = await testGpu();
  for (const [batch, features] of [[1, 7], [7, 33], [33, 31]] as const) {
    const x = storedAs(uniformF32(batch * features, batch + features, -2, 2), "f16");
    const labelValues = integers(batch, 10, batch);
    const table = Float32Array.from([0.9, 0.31, 0.62]);
    const step = 1;
    const buffers = {
      x: gpu.storage("f16 mixup x", storageArray(x, "f16")),
      labels: gpu.storage("f16 mixup labels", labelValues),
      labels2: poisonedU32(gpu, "f16 mixup labels2", batch),
      lambdas: gpu.storage("f16 mixup lambdas", table),
      counters: gpu.storage("f16 mixup counters", Uint32Array.from([5, step])),
      lambdaOut: poisoned(gpu, "f16 mixup lambda", 1),
    };
    submitDispatches(gpu, [
      await mixup(kernels, {
        ...buffers,
        tableLength: table.length,
        counterIndex: 1,
        batch,
        features,
        storage: "f16",
      }),
    ]);
    const expected = mixupRef(x, labelValues, batch, features, table[step]!);
    // tests/mixup_test.ts: atol 1e-6, rtol 1e-6.
    assertClose(await gpu.readValues(buffers.x, batch * features, "f16"), expected.x, {
      ...withF16Output({ atol: 1e-6, rtol: 1e-6 }),
      label: `f16 mixup B=${batch} D=${features}`,
    });
    assert.deepStrictEqual(Array.from(await gpu.readU32(buffers.labels2, batch)), expected.labels2);
    assert.strictEqual((await gpu.readF32(buffers.lambdaOut, 1))[0], table[step]);
    for (const b of Object.values(buffers)) b.destroy();
  }
});
