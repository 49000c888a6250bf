/**
 * The kernels that move values between shapes, each against a float64 reference with its output
 * poisoned (NaN) first, at sizes that are no multiple of a workgroup: the transpose of two axes
 * (and accumulate), the mean and sum over an axis and its broadcast back, column windows (concat
 * copy, accumulate, the slice gradient's pad) and the broadcast add. Also the batched matmul
 * (both operands per product, and b shared) and the label losses (bce, mse, mixup, masking).
 * These kernels move or sum few values: f32 results equal the reference to ~1e-6.
 */

import { ok, rejects } from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { axisBroadcast, axisReduce, columns, transpose, transposeDims } from "../core/ops/shape.ts";
import { add } from "../core/ops/elementwise.ts";
import { matmul } from "../core/ops/matmul.ts";
import { labelLoss } from "../core/ops/label_losses.ts";
import { matmulRef } from "./reference/matmul.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { integers, uniformF32 } from "./helpers/random.ts";

const TOL = { atol: 1e-6, rtol: 1e-5 };

function transposeRef(x: ArrayLike<number>, shape: number[], i: number, j: number): Float64Array {
  const d = transposeDims(shape, i, j);
  const out = new Float64Array(x.length);
  for (let o = 0; o < d.outer; o++) {
    for (let a = 0; a < d.a; a++) {
      for (let m = 0; m < d.mid; m++) {
        for (let b = 0; b < d.b; b++) {
          for (let t = 0; t < d.inner; t++) {
            const from = (((o * d.a + a) * d.mid + m) * d.b + b) * d.inner + t;
            out[(((o * d.b + b) * d.mid + m) * d.a + a) * d.inner + t] = x[from]!;
          }
        }
      }
    }
  }
  return out;
}

Deno.test("transpose: two axes of 2-, 3- and 5-D tensors (and accumulate) against float64", async () => {
  const { gpu, kernels } = await testGpu();
  const cases: [number[], number, number][] = [
    [[37, 19], 0, 1],
    [[3, 17, 29], 1, 2],
    [[3, 17, 29], 0, 2],
    [[2, 3, 4, 5, 7], 1, 3],
    [[300, 257], 0, 1],
  ];
  for (const [shape, i, j] of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = uniformF32(n, n + i);
    const xb = gpu.storage("t x", x);
    const out = poisoned(gpu, "t out", n);
    const c0 = uniformF32(n, n + 7);
    const acc = gpu.storage("t acc", c0);
    const dims = transposeDims(shape, i, j);
    submitDispatches(gpu, [
      await transpose(kernels, { x: xb, out, dims }),
      await transpose(kernels, { x: xb, out: acc, dims, accumulate: true }),
    ]);
    const ref = transposeRef(x, shape, i, j);
    assertClose(await gpu.readF32(out, n), ref, {
      ...TOL,
      label: `transpose [${shape}] ${i}↔${j}`,
    });
    assertClose(await gpu.readF32(acc, n), ref.map((v, k) => v + c0[k]!), {
      ...TOL,
      label: `transpose accumulate [${shape}]`,
    });
    for (const b of [xb, out, acc]) b.destroy();
  }
});

Deno.test("axis_mean kernel: mean and sum (= and +=), and the broadcast back (= and +=) against float64", async () => {
  const { gpu, kernels } = await testGpu();
  const shapes: [number, number, number][] = [[1, 5, 1], [7, 13, 3], [3, 300, 1], [1, 2, 513]];
  for (const [outer, axis, inner] of shapes) {
    const n = outer * axis * inner;
    const x = uniformF32(n, n);
    const xb = gpu.storage("m x", x);
    const mean = poisoned(gpu, "m mean", outer * inner);
    const sum = poisoned(gpu, "m sum", outer * inner);
    const dy = uniformF32(outer * inner, n + 1);
    const dyb = gpu.storage("m dy", dy);
    const dx = poisoned(gpu, "m dx", n);
    const d0 = uniformF32(n, n + 2);
    const dacc = gpu.storage("m dacc", d0);
    const s0 = uniformF32(outer * inner, n + 3);
    const sacc = gpu.storage("m sacc", s0);
    const dims = { outer, axis, inner };
    submitDispatches(gpu, [
      await axisReduce(kernels, { x: xb, out: mean, ...dims, scale: 1 / axis }),
      await axisReduce(kernels, { x: xb, out: sum, ...dims, scale: 1 }),
      await axisReduce(kernels, { x: xb, out: sacc, ...dims, scale: 1, accumulate: true }),
      await axisBroadcast(kernels, { dy: dyb, dx, ...dims, scale: 1 / axis }),
      await axisBroadcast(kernels, { dy: dyb, dx: dacc, ...dims, scale: 2, accumulate: true }),
    ]);
    const refSum = new Float64Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let a = 0; a < axis; a++) {
        for (let t = 0; t < inner; t++) refSum[o * inner + t]! += x[(o * axis + a) * inner + t]!;
      }
    }
    const label = `[${outer}, ${axis}, ${inner}]`;
    // A sum over up to 300 values of magnitude ≤ 1: f32 rounding ~300·6e-8.
    const sumTol = { atol: 3e-5, rtol: 1e-5 };
    assertClose(await gpu.readF32(sum, outer * inner), refSum, {
      ...sumTol,
      label: `sum ${label}`,
    });
    assertClose(await gpu.readF32(sacc, outer * inner), refSum.map((v, i) => v + s0[i]!), {
      ...sumTol,
      label: `sum += ${label}`,
    });
    assertClose(await gpu.readF32(mean, outer * inner), refSum.map((v) => v / axis), {
      ...sumTol,
      label: `mean ${label}`,
    });
    const back = Float64Array.from({ length: n }, (_, e) => {
      const o = Math.floor(e / (axis * inner));
      return dy[o * inner + (e % inner)]!;
    });
    assertClose(await gpu.readF32(dx, n), back.map((v) => v / axis), {
      ...TOL,
      label: `broadcast ${label}`,
    });
    assertClose(await gpu.readF32(dacc, n), back.map((v, e) => 2 * v + d0[e]!), {
      ...TOL,
      label: `broadcast += ${label}`,
    });
    for (const b of [xb, mean, sum, sacc, dyb, dx, dacc]) b.destroy();
  }
});

Deno.test("column windows: copy, accumulate and pad against float64; a window that does not fit is an error", async () => {
  const { gpu, kernels } = await testGpu();
  const rows = 37;
  const [inCols, outCols, width, inOffset, outOffset] = [11, 29, 7, 3, 13];
  const x = uniformF32(rows * inCols, 3);
  const xb = gpu.storage("c x", x);
  const o0 = uniformF32(rows * outCols, 4);
  const copied = gpu.storage("c copy", o0);
  const accumulated = gpu.storage("c acc", o0);
  const padded = poisoned(gpu, "c pad", rows * outCols);
  const win = { rows, width, inCols, inOffset, outCols, outOffset };
  submitDispatches(gpu, [
    await columns(kernels, { x: xb, out: copied, mode: "copy", ...win }),
    await columns(kernels, { x: xb, out: accumulated, mode: "copy", accumulate: true, ...win }),
    await columns(kernels, { x: xb, out: padded, mode: "pad", ...win }),
  ]);
  const inWindow = (j: number) => j >= outOffset && j < outOffset + width;
  const src = (r: number, j: number) => x[r * inCols + inOffset + j - outOffset]!;
  const ref = (f: (r: number, j: number, old: number) => number) =>
    Float64Array.from({ length: rows * outCols }, (_, e) => {
      const r = Math.floor(e / outCols);
      const j = e % outCols;
      return f(r, j, o0[e]!);
    });
  assertClose(await gpu.readF32(copied), ref((r, j, old) => (inWindow(j) ? src(r, j) : old)), {
    ...TOL,
    label: "columns copy",
  });
  assertClose(
    await gpu.readF32(accumulated),
    ref((r, j, old) => (inWindow(j) ? old + src(r, j) : old)),
    { ...TOL, label: "columns copy +=" },
  );
  assertClose(await gpu.readF32(padded), ref((r, j) => (inWindow(j) ? src(r, j) : 0)), {
    ...TOL,
    label: "columns pad",
  });
  await rejects(
    columns(kernels, { x: xb, out: padded, mode: "copy", ...win, outOffset: 25 }),
    /window of 7 columns at 3 \(of 11\) → 25 \(of 29\) does not fit/,
  );
  for (const b of [xb, copied, accumulated, padded]) b.destroy();
});

Deno.test("broadcast add: b repeated over a's leading axes, against float64", async () => {
  const { gpu, kernels } = await testGpu();
  const [n, nb] = [37 * 19, 19];
  const a = uniformF32(n, 1);
  const b = uniformF32(nb, 2);
  const [ab, bb] = [gpu.storage("a", a), gpu.storage("b", b)];
  const out = poisoned(gpu, "out", n);
  submitDispatches(gpu, [await add(kernels, { a: ab, b: bb, out, n, nb })]);
  assertClose(await gpu.readF32(out), Float64Array.from(a, (v, i) => v + b[i % nb]!), {
    ...TOL,
    label: "add broadcast",
  });
  await rejects(
    add(kernels, { a: ab, b: bb, out, n, nb: 18 }),
    /b's 18 values do not divide a's 703/,
  );
  for (const x of [ab, bb, out]) x.destroy();
});

Deno.test("batched matmul: products with their own operands, and one b shared, every layout", async () => {
  const { gpu, kernels } = await testGpu();
  const [batch, m, n, k] = [5, 13, 9, 7];
  for (const layout of ["nn", "nt", "tn"] as const) {
    for (const shared of [false, true]) {
      for (
        const tile of [undefined, {
          strategy: "direct" as const,
          m: 16,
          n: 128,
          k: 1,
          threadM: 16,
          threadN: 16,
        }]
      ) {
        const a = uniformF32(batch * m * k, 11);
        const b = uniformF32((shared ? 1 : batch) * k * n, 12);
        const [ab, bb] = [gpu.storage("a", a), gpu.storage("b", b)];
        const c = poisoned(gpu, "c", batch * m * n);
        submitDispatches(gpu, [
          await matmul(kernels, {
            a: ab,
            b: bb,
            c,
            m,
            n,
            k,
            layout,
            tile,
            batch: { count: batch, strideA: m * k, strideB: shared ? 0 : k * n, strideC: m * n },
          }),
        ]);
        const ref = new Float64Array(batch * m * n);
        for (let z = 0; z < batch; z++) {
          const bz = shared ? b : b.subarray(z * k * n, (z + 1) * k * n);
          ref.set(
            matmulRef(layout, a.subarray(z * m * k, (z + 1) * m * k), bz, m, n, k).c,
            z * m * n,
          );
        }
        assertClose(await gpu.readF32(c), ref, {
          atol: 1e-6,
          rtol: 1e-5,
          label: `batched ${layout}${shared ? " (b shared)" : ""} ${tile ? "direct" : "default"}`,
        });
        for (const x of [ab, bb, c]) x.destroy();
      }
    }
  }
});

Deno.test("label losses: bce and mse with masking and mixup against float64", async () => {
  const { gpu, kernels } = await testGpu();
  const rows = 67;
  const valid = 61;
  for (const kind of ["bce", "mse"] as const) {
    const classes = kind === "bce" ? 1 : 5;
    const preds = uniformF32(rows * classes, 3, -4, 4);
    const labels = integers(rows, kind === "bce" ? 2 : classes, 4);
    const labels2 = integers(rows, kind === "bce" ? 2 : classes, 5);
    for (const lambda of [undefined, 0.3]) {
      const [pb, lb, l2] = [
        gpu.storage("p", preds),
        gpu.storage("y", labels),
        gpu.storage("y2", labels2),
      ];
      const lam = gpu.storage("λ", new Float32Array([lambda ?? 1, 0, 0, 0]));
      const [loss, correct, grad] = [
        poisoned(gpu, "loss", rows),
        poisoned(gpu, "correct", rows),
        poisoned(gpu, "grad", rows * classes),
      ];
      const gradScale = 0.25;
      submitDispatches(gpu, [
        await labelLoss(kernels, {
          kind,
          preds: pb,
          labels: lb,
          loss,
          correct,
          grad,
          rows,
          classes,
          validRows: valid,
          gradScale,
          mixup: lambda === undefined ? undefined : { labels2: l2, lambda: lam },
        }),
      ]);
      const lam1 = lambda ?? 1;
      const t = (r: number, j: number) =>
        lam1 * ((kind === "bce" ? labels[r] === 1 : labels[r] === j) ? 1 : 0) +
        (1 - lam1) * ((kind === "bce" ? labels2[r] === 1 : labels2[r] === j) ? 1 : 0);
      const refLoss = new Float64Array(rows);
      const refCorrect = new Float64Array(rows);
      const refGrad = new Float64Array(rows * classes);
      for (let r = 0; r < valid; r++) {
        if (kind === "bce") {
          const z = preds[r]!;
          refLoss[r] = Math.max(z, 0) - z * t(r, 0) + Math.log1p(Math.exp(-Math.abs(z)));
          refCorrect[r] = (z > 0) === (labels[r] === 1) ? 1 : 0;
          refGrad[r] = (1 / (1 + Math.exp(-z)) - t(r, 0)) * gradScale;
        } else {
          let s = 0;
          let best = 0;
          for (let j = 0; j < classes; j++) {
            const d = preds[r * classes + j]! - t(r, j);
            s += d * d;
            refGrad[r * classes + j] = (2 / classes) * d * gradScale;
            if (preds[r * classes + j]! > preds[r * classes + best]!) best = j;
          }
          refLoss[r] = s / classes;
          refCorrect[r] = best === labels[r] ? 1 : 0;
        }
      }
      const label = `${kind}${lambda === undefined ? "" : " mixup"}`;
      assertClose(await gpu.readF32(loss), refLoss, {
        atol: 1e-6,
        rtol: 1e-5,
        label: `${label} loss`,
      });
      assertClose(await gpu.readF32(correct), refCorrect, {
        atol: 0,
        rtol: 0,
        label: `${label} correct`,
      });
      assertClose(await gpu.readF32(grad), refGrad, {
        atol: 1e-7,
        rtol: 1e-5,
        label: `${label} grad`,
      });
      for (const b of [pb, lb, l2, lam, loss, correct, grad]) b.destroy();
    }
  }
  // A label out of range makes the row's loss NaN.
  const pb = gpu.storage("p", new Float32Array([1, 2]));
  const lb = gpu.storage("y", new Uint32Array([0, 2]));
  const [loss, correct] = [poisoned(gpu, "loss", 2), poisoned(gpu, "c", 2)];
  submitDispatches(gpu, [
    await labelLoss(kernels, {
      kind: "bce",
      preds: pb,
      labels: lb,
      loss,
      correct,
      rows: 2,
      classes: 1,
      gradScale: 0,
    }),
  ]);
  const l = await gpu.readF32(loss);
  ok(Number.isFinite(l[0]) && Number.isNaN(l[1]), `losses ${l}`);
});
