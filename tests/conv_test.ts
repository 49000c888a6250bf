/**
 * The convolution and pooling kernels and ops: im2col and col2im (NCHW and NHWC inputs, padding 0
 * and 1, k = 3 and 2) and max-pooling forward and backward (odd sides, ties) against float64
 * references with their outputs poisoned (NaN) first, at sizes that are no multiple of a
 * workgroup; then the ops through the plan (`checkOp`): a convolution whose weight and bias are
 * inputs — activations, as a hypernetwork's generated weights are — so its gradients to x, to the
 * weight and to the bias are checked against central finite differences of a direct float64
 * convolution (not of im2col); `nn.conv2d`'s own parameters (whose split weight gradient
 * accumulates), max-pooling and the constant scale likewise; and the same ops with f16 values.
 *
 * Tolerances: im2col, col2im and pooling move or add ≤ 9 values: 1e-6. Through the plan the
 * convolution's products sum ≤ 36 f32 terms (~1e-6 relative); checkOp's default 1e-4 of
 * |error| / (1 + |reference|) is two orders above that and far below the values (~1).
 */

import { ok, strictEqual } from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import {
  col2im,
  im2col,
  type ImageLayout,
  maxPoolBackward,
  maxPoolForward,
} from "../core/ops/conv.ts";
import { indexBits } from "../core/ops/index_bits.ts";
import { checkOp } from "../core/train/check_op.ts";
import * as nn from "../core/graph/nn.ts";
import {
  col2imRef,
  conv2dRef,
  im2colRef,
  imageIndex,
  maxPoolBackwardRef,
  maxPoolRef,
} from "./reference/conv.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { uniformF32 } from "./helpers/random.ts";

const TOL = { atol: 1e-6, rtol: 1e-5 };

Deno.test("im2col and col2im (= and +=) against float64, NCHW and NHWC, padding 0 and 1", async () => {
  const { gpu, kernels } = await testGpu();
  const cases: [number, number, number, number, number, number, ImageLayout][] = [
    // batch, channels, height, width, kernel, pad, layout
    [3, 5, 7, 9, 3, 1, "nchw"],
    [2, 3, 11, 6, 3, 1, "nhwc"],
    [2, 4, 5, 8, 3, 0, "nhwc"],
    [1, 3, 6, 7, 2, 0, "nchw"],
    [4, 1, 13, 13, 3, 1, "nchw"],
  ];
  for (const [batch, channels, height, width, kernel, pad, layout] of cases) {
    const label = `[${batch},${channels},${height},${width}] ${layout} k${kernel} pad ${pad}`;
    const s = { batch, channels, height, width, layout };
    const n = batch * channels * height * width;
    const x = uniformF32(n, n);
    const colsRef = im2colRef(x, s, kernel, pad);
    const dcols = uniformF32(colsRef.length, n + 1);
    const base = uniformF32(n, n + 2);
    const xb = gpu.storage("x", x);
    const cols = poisoned(gpu, "cols", colsRef.length);
    const db = gpu.storage("dcols", dcols);
    const dx = poisoned(gpu, "dx", n);
    const acc = gpu.storage("dx acc", base);
    const geometry = { batch, channels, height, width, kernel, pad, layout };
    submitDispatches(gpu, [
      await im2col(kernels, { ...geometry, x: xb, cols }),
      await col2im(kernels, { ...geometry, dcols: db, dx }),
      await col2im(kernels, { ...geometry, dcols: db, dx: acc, accumulate: true }),
    ]);
    assertClose(await gpu.readF32(cols, colsRef.length), colsRef, {
      ...TOL,
      label: `im2col ${label}`,
    });
    const dxRef = col2imRef(dcols, s, kernel, pad);
    assertClose(await gpu.readF32(dx, n), dxRef, { ...TOL, label: `col2im ${label}` });
    assertClose(await gpu.readF32(acc, n), dxRef.map((v, i) => v + base[i]!), {
      ...TOL,
      label: `col2im += ${label}`,
    });
    for (const b of [xb, cols, db, dx, acc]) b.destroy();
  }
});

Deno.test("im2col · weight equals the direct convolution (the float64 references agree)", () => {
  // The references agree with each other: the convolution is the columns times the weight.
  const s = { batch: 2, channels: 3, height: 5, width: 4, layout: "nchw" as const };
  const x = uniformF32(2 * 3 * 5 * 4, 3);
  const w = uniformF32(4 * 3 * 9, 4);
  const cols = im2colRef(x, s, 3, 1);
  const direct = conv2dRef(x, s, w, 4, 3, 1);
  const viaCols = new Float64Array(direct.length);
  for (let r = 0; r < direct.length / 4; r++) {
    for (let o = 0; o < 4; o++) {
      let acc = 0;
      for (let j = 0; j < 27; j++) acc += cols[r * 27 + j]! * w[o * 27 + j]!;
      viaCols[r * 4 + o] = acc;
    }
  }
  assertClose(viaCols, direct, { atol: 1e-12, rtol: 1e-12, label: "im2col·W = conv" });
  strictEqual(imageIndex(s, 1, 2, 4, 3), 2 * 3 * 5 * 4 - 1);
});

Deno.test("max-pool forward and backward (= and +=) against float64: odd sides, sizes 2 and 3, ties", async () => {
  const { gpu, kernels } = await testGpu();
  const cases: [number, number, number, number, number, boolean][] = [
    // batch, height, width, channels, size, ties (small integers: the first maximum wins)
    [3, 7, 5, 6, 2, false],
    [2, 28, 28, 5, 2, false],
    [2, 9, 10, 3, 3, false],
    [4, 6, 7, 3, 2, true],
  ];
  for (const [batch, height, width, channels, size, ties] of cases) {
    const label = `[${batch},${height},${width},${channels}] size ${size}${ties ? " ties" : ""}`;
    const n = batch * height * width * channels;
    const x = ties ? uniformF32(n, n).map((v) => Math.round(2 * v)) : uniformF32(n, n);
    const ref = maxPoolRef(x, batch, height, width, channels, size);
    const dy = uniformF32(ref.y.length, n + 1);
    const base = uniformF32(n, n + 2);
    const xb = gpu.storage("x", x);
    const y = poisoned(gpu, "y", ref.y.length);
    const dyb = gpu.storage("dy", dy);
    const dx = poisoned(gpu, "dx", n);
    const acc = gpu.storage("dx acc", base);
    const geometry = { batch, height, width, channels, size };
    submitDispatches(gpu, [
      await maxPoolForward(kernels, { ...geometry, x: xb, y }),
      await maxPoolBackward(kernels, { ...geometry, x: xb, dy: dyb, dx }),
      await maxPoolBackward(kernels, { ...geometry, x: xb, dy: dyb, dx: acc, accumulate: true }),
    ]);
    assertClose(await gpu.readF32(y, ref.y.length), ref.y, { ...TOL, label: `max_pool ${label}` });
    const dxRef = maxPoolBackwardRef(dy, ref.argmax, n);
    assertClose(await gpu.readF32(dx, n), dxRef, { ...TOL, label: `max_pool backward ${label}` });
    assertClose(await gpu.readF32(acc, n), dxRef.map((v, i) => v + base[i]!), {
      ...TOL,
      label: `max_pool backward += ${label}`,
    });
    for (const b of [xb, y, dyb, dx, acc]) b.destroy();
  }
});

Deno.test("index bits: the ±1 code of row indices, LSB first, against float64", async () => {
  const { gpu, kernels } = await testGpu();
  for (const [rows, bits, first] of [[300, 9, 0], [5, 32, 2 ** 32 - 5], [77, 3, 1000]]) {
    const out = poisoned(gpu, "bits", rows! * bits!);
    submitDispatches(gpu, [await indexBits(kernels, { out, rows: rows!, bits: bits!, first })]);
    const ref = Float64Array.from(
      { length: rows! * bits! },
      (_, i) => (Math.floor((Math.floor(i / bits!) + first!) / 2 ** (i % bits!)) % 2 ? 1 : -1),
    );
    assertClose(await gpu.readF32(out, rows! * bits!), ref, {
      ...TOL,
      label: `bits ${rows}×${bits}`,
    });
    out.destroy();
  }
});

Deno.test("conv2d through the plan: gradients to x, to a weight that is an activation, and to the bias, against finite differences of a direct convolution", async () => {
  const { kernels } = await testGpu();
  const cases: [number, number, number, number, number, ImageLayout, string][] = [
    // batch, channels, height, width, out, layout, activation
    [2, 3, 5, 6, 4, "nchw", "identity"],
    [2, 2, 7, 3, 5, "nhwc", "relu"],
  ];
  for (const [batch, channels, height, width, out, layout, activation] of cases) {
    const s = { batch, channels, height, width, layout };
    const xShape = layout === "nchw"
      ? [batch, channels, height, width]
      : [batch, height, width, channels];
    const result = await checkOp(kernels, {
      label: `conv2d ${layout}`,
      inputs: { x: xShape, weight: [out, channels, 3, 3], bias: [out] },
      build: (g, t) =>
        nn.conv2dWith(g, t.x!, t.weight!, t.bias!, {
          layout,
          activation: activation as "relu",
          name: "conv",
        }),
      reference: (v) => {
        const y = conv2dRef(v.x!, s, v.weight!, out, 3, 1, v.bias!);
        return activation === "relu" ? y.map((t) => Math.max(t, 0)) : y;
      },
      low: -1,
      high: 1,
    });
    ok(result.forwardError < 1e-4);
    for (const name of ["x", "weight", "bias"]) ok(name in result.gradientErrors, name);
  }
});

Deno.test("nn.conv2d with parameters, max_pool and scale through the plan against finite differences", async () => {
  const { kernels } = await testGpu();
  // nn.conv2d's parameters: their gradients accumulate (the split weight gradient's += path).
  const s = { batch: 3, channels: 2, height: 4, width: 5, layout: "nchw" as const };
  await checkOp(kernels, {
    label: "conv2d parameters",
    inputs: { x: [3, 2, 4, 5] },
    build: (g, t) => nn.conv2d(g, t.x!, "conv", { out: 3, layout: "nchw", activation: "tanh" }),
    reference: (v) =>
      conv2dRef(v.x!, s, v["conv.weight"]!, 3, 3, 1, v["conv.bias"]!).map(Math.tanh),
    low: -1,
    high: 1,
  });
  await checkOp(kernels, {
    label: "max_pool 2",
    inputs: { x: [2, 7, 5, 3] },
    build: (g, t) => nn.maxPool2d(g, t.x!, 2),
    reference: (v) => maxPoolRef(v.x!, 2, 7, 5, 3, 2).y,
  });
  await checkOp(kernels, {
    label: "scale",
    inputs: { x: [3, 37] },
    // Used twice, so the second backward accumulates into x's gradient.
    build: (g, t) => nn.add(g, nn.scale(g, t.x!, 0.37), nn.scale(g, t.x!, -2.5)),
    reference: (v) => v.x!.map((t) => 0.37 * t - 2.5 * t),
  });
});

Deno.test("conv2d, max_pool and scale under precision f16 (f16 values, f32 gradients) through the plan", async () => {
  const { kernels } = await testGpu();
  const s = { batch: 2, channels: 2, height: 5, width: 6, layout: "nhwc" as const };
  await checkOp(kernels, {
    label: "conv2d f16",
    precision: "f16",
    inputs: { x: [2, 5, 6, 2], weight: [3, 2, 3, 3], bias: [3] },
    build: (g, t) => nn.conv2dWith(g, t.x!, t.weight!, t.bias!, { name: "conv" }),
    reference: (v) => conv2dRef(v.x!, s, v.weight!, 3, 3, 1, v.bias!),
    low: -1,
    high: 1,
  });
  await checkOp(kernels, {
    label: "max_pool f16",
    precision: "f16",
    inputs: { x: [2, 5, 6, 2] },
    build: (g, t) => nn.scale(g, nn.maxPool2d(g, t.x!, 2), 0.5),
    reference: (v) => maxPoolRef(v.x!, 2, 5, 6, 2, 2).y.map((y) => 0.5 * y),
  });
});
