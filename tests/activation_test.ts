import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { type Activation, activationBackward, activationForward } from "../core/ops/activation.ts";
import {
  activationBackwardRef,
  activationDerivativeRef,
  activationForwardRef,
  erf,
  erfc,
  erfcContinuedFraction,
  erfSeries,
} from "./reference/activation.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { dot, numericGradient } from "./helpers/finite_difference.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { f64, uniformF32 } from "./helpers/random.ts";

// 70 000 > 256 · 255 spans many workgroups past a non-multiple tail.
const SIZES = [1, 7, 33, 130, 257, 70_000];

// Forward and backward, against float64, at atol 1e-5, rtol 1e-4 (the elementwise defaults): the
// GELU erf approximation errs by ≤ 1.5e-7 (≤ 1e-6 after ·|x| ≤ 6), the rest is a few f32 ulps of
// exp/tanh, far inside that.
const TOL = { atol: 1e-5, rtol: 1e-4 };

/** n inputs: most in [−6, 6], where every activation bends, and one in eight at ±30 or beyond. */
function inputs(n: number, seed: number): Float32Array {
  const x = uniformF32(n, seed, -6, 6);
  const far = uniformF32(n, seed + 1, 30, 60);
  for (let i = 3; i < n; i += 8) x[i] = i % 16 === 3 ? far[i]! : -far[i]!;
  if (n > 2) x[1] = 0; // the kink of relu and selu: the kernels' value there is the left-hand one
  return x;
}

Deno.test("erf reference matches known values to 1e-15", () => {
  const known: [number, number][] = [
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [3, 0.9999779095030014],
    [-1, -0.8427007929497149],
  ];
  for (const [x, value] of known) {
    assert.ok(Math.abs(erf(x) - value) <= 1e-15, `erf(${x}) = ${erf(x)}, expected ${value}`);
  }
  // The tail where 1 − erf cancels: erfc(5) = 1.5374597944280349e-12 (relative 1e-14).
  assert.ok(Math.abs(erfc(5) / 1.5374597944280349e-12 - 1) <= 1e-14, `erfc(5) = ${erfc(5)}`);
  // The series (|x| < 1.5) and the continued fraction (above) agree where they meet.
  const series = erfSeries(1.5);
  const fraction = 1 - erfcContinuedFraction(1.5);
  assert.ok(Math.abs(series - fraction) <= 1e-15, `erf(1.5): ${series} vs ${fraction}`);
});

/** Reference derivative vs central differences, GPU forward and backward vs reference. */
async function checkActivation(name: Activation): Promise<void> {
  // 1. Reference f' against central differences of Σ w·f(x) in float64, away from kinks.
  const xs = f64(uniformF32(200, 11, -6, 6)).map((v) => Math.abs(v) < 1e-3 ? v + 0.01 : v);
  const w = f64(uniformF32(200, 12, -1, 1));
  const numeric = numericGradient((x) => dot(w, activationForwardRef(name, x)), xs);
  const analytic = xs.map((v, i) => w[i]! * activationDerivativeRef(name, v));
  assertClose(analytic, numeric, {
    atol: 1e-7,
    rtol: 1e-6,
    label: `activation reference ${name}' vs finite differences n=200`,
  });

  // 2. GPU forward and backward against the float64 reference.
  const { gpu, kernels } = await testGpu();
  for (const n of SIZES) {
    const x = inputs(n, n + 3);
    const dy = uniformF32(n, n + 5, -2, 2);
    const xb = gpu.storage(`${name} x`, x);
    const dyb = gpu.storage(`${name} dy`, dy);
    const y = poisoned(gpu, `${name} y`, n);
    const dx = poisoned(gpu, `${name} dx`, n);
    submitDispatches(gpu, [
      await activationForward(kernels, { x: xb, y, n, activation: name }),
      await activationBackward(kernels, { x: xb, dy: dyb, dx, n, activation: name }),
    ]);
    assertClose(await gpu.readF32(y, n), activationForwardRef(name, x), {
      ...TOL,
      label: `activation forward ${name} n=${n}`,
    });
    assertClose(await gpu.readF32(dx, n), activationBackwardRef(name, x, dy), {
      ...TOL,
      label: `activation backward ${name} n=${n}`,
    });
    for (const b of [xb, dyb, y, dx]) b.destroy();
  }
}

for (const name of ["relu", "gelu", "gelu_tanh", "selu", "tanh", "sigmoid", "silu"] as const) {
  Deno.test(`activation ${name}: reference derivative, GPU forward and backward`, () =>
    checkActivation(name));
}

Deno.test("activation backward with accumulate: dx += dy·f'(x)", async () => {
  const { gpu, kernels } = await testGpu();
  for (const n of [7, 257, 70_000]) {
    for (const name of ["gelu", "silu"] as const) {
      const x = inputs(n, 2 * n);
      const dy = uniformF32(n, 2 * n + 1, -2, 2);
      const dxIn = uniformF32(n, 2 * n + 2, -1, 1);
      const xb = gpu.storage("accumulate x", x);
      const dyb = gpu.storage("accumulate dy", dy);
      const dx = gpu.storage("accumulate dx", dxIn);
      submitDispatches(gpu, [
        await activationBackward(kernels, {
          x: xb,
          dy: dyb,
          dx,
          n,
          activation: name,
          accumulate: true,
        }),
      ]);
      assertClose(await gpu.readF32(dx, n), activationBackwardRef(name, x, dy, dxIn), {
        ...TOL,
        label: `activation backward accumulate ${name} n=${n}`,
      });
      for (const b of [xb, dyb, dx]) b.destroy();
    }
  }
});

Deno.test("activation on ranges of larger buffers, the rest untouched", async () => {
  const { gpu, kernels } = await testGpu();
  const n = 130;
  const x = inputs(n, 41);
  const dy = uniformF32(n, 42, -2, 2);
  // x and dy at 256-byte offsets (WebGPU's minStorageBufferOffsetAlignment) of one read-only arena;
  // y and dx inside written buffers whose other values must survive.
  const arena = gpu.storage("activation arena", 1024 + 4 * n);
  gpu.write(arena, x, 256);
  gpu.write(arena, dy, 1024);
  const surround = uniformF32(64 + n + 9, 43, -1, 1);
  const yb = gpu.storage("activation y arena", surround);
  const dxb = gpu.storage("activation dx arena", surround);
  const at = (buffer: GPUBuffer, offset: number) => ({ buffer, offset, size: 4 * n });
  submitDispatches(gpu, [
    await activationForward(kernels, { x: at(arena, 256), y: at(yb, 256), n, activation: "gelu" }),
    await activationBackward(kernels, {
      x: at(arena, 256),
      dy: at(arena, 1024),
      dx: at(dxb, 256),
      n,
      activation: "gelu",
    }),
  ]);
  const expectedY = f64(surround);
  expectedY.set(activationForwardRef("gelu", x), 64);
  assertClose(await gpu.readF32(yb, surround.length), expectedY, {
    ...TOL,
    label: `activation forward gelu range n=${n}`,
  });
  const expectedDx = f64(surround);
  expectedDx.set(activationBackwardRef("gelu", x, dy), 64);
  assertClose(await gpu.readF32(dxb, surround.length), expectedDx, {
    ...TOL,
    label: `activation backward gelu range n=${n}`,
  });
  for (const b of [arena, yb, dxb]) b.destroy();
});

Deno.test("activation bindings reject unknown names, short buffers and aliasing", async () => {
  const { gpu, kernels } = await testGpu();
  const x = gpu.storage("short x", 16);
  const y = gpu.storage("short y", 16);
  await assert.rejects(
    async () => await activationForward(kernels, { x, y, n: 4, activation: "gelu2" as Activation }),
    (e: Error) =>
      e instanceof RangeError && e.message.includes(`"gelu2"`) &&
      e.message.includes(`"silu"`),
  );
  await assert.rejects(
    async () => await activationForward(kernels, { x, y, n: 5, activation: "relu" }),
    (e: Error) => e instanceof RangeError && e.message.includes("short x"),
  );
  await assert.rejects(
    async () =>
      await activationBackward(kernels, {
        x,
        dy: { buffer: y, offset: 0, size: 8 },
        dx: { buffer: y, offset: 8, size: 8 },
        n: 2,
        activation: "relu",
      }),
    (e: Error) => e instanceof RangeError && e.message.includes("written"),
  );
  x.destroy();
  y.destroy();
});
