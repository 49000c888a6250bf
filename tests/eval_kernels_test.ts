/**
 * The evaluation kernels against float64 references, at sizes that are not tile multiples, with
 * outputs poisoned first: `wgsl/adversarial.wgsl` (PGD's random start, the FGSM/PGD step),
 * `wgsl/image_view.wgsl` (test-time views) and `wgsl/predictions.wgsl` (confusion counts, binary
 * scores, summed logits), in f32 and with f16 inputs/outputs.
 *
 * Tolerances: a raw value (0..255) moved by ε·255 is one or two f32 roundings away from float64:
 * |Δ| ≤ 255·2⁻²³·2 ≈ 6e-5, so atol 1e-4 (raw units). The normalised input is three roundings
 * (v·scale + shift), as the gather: atol 4e-6 + rtol 1e-6 for values up to ~20; stored as f16 it
 * is half an f16 ulp more (rtol 2⁻¹¹ ≈ 4.9e-4, atol 6e-5 near 0). Counts are exact.
 */

import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { ADVERSARIAL_STREAM, attackStart, attackStep } from "../core/ops/adversarial.ts";
import { imageView } from "../core/ops/image_view.ts";
import { countPredictions, sumLogits } from "../core/ops/predictions.ts";
import { type Storage, storageArray } from "../core/gpu/device.ts";
import { attackStartRef, attackStepRef, normaliseRef } from "./reference/adversarial.ts";
import { imageViewRef } from "./reference/image_view.ts";
import { confusionRef, scoreRef } from "./reference/predictions.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, storedAs, testGpu } from "./helpers/gpu.ts";
import { integers, uniformF32 } from "./helpers/random.ts";

const F16_RTOL = 2 ** -11;

function inputTolerance(storage: Storage) {
  return storage === "f16" ? { atol: 6e-5, rtol: F16_RTOL + 1e-6 } : { atol: 4e-6, rtol: 1e-6 };
}

/** Raw byte values 0..255 (as f32) of `n` values, some at the ends of the range. */
function rawBytes(n: number, seed: number): Float32Array {
  const v = Float32Array.from(integers(n, 256, seed));
  for (let i = 0; i < n; i += 17) v[i] = i % 34 === 0 ? 0 : 255;
  return v;
}

for (const storage of ["f32", "f16"] as const) {
  // 784 = 28², one statistic; 3·5·7 with one per channel; 13 with one per feature.
  for (const [batch, features, stats] of [[1, 784, 1], [7, 105, 3], [130, 13, 13]] as const) {
    const shape = `B=${batch} D=${features} S=${stats} ${storage}`;
    Deno.test(`adversarial attack_start, attack_step (FGSM, PGD): ${shape} vs float64`, async () => {
      const { gpu, kernels } = await testGpu();
      const n = batch * features;
      const mean = Array.from(uniformF32(stats, n, 0.1, 0.6));
      const std = Array.from(uniformF32(stats, n + 1, 0.2, 0.4));
      const clean = rawBytes(n, n + 2);
      // Gradients of both signs, and exact zeros (sign 0: no move).
      const grad = uniformF32(n, n + 3, -1, 1).map((g, i) => (i % 11 === 0 ? 0 : g));
      const cleanBuffer = gpu.storage("clean", clean);
      const gradBuffer = gpu.storage("grad", grad);
      const cursor = gpu.storage("cursor", new Uint32Array([9, 3, 0, 0]));
      const common = { clean: cleanBuffer, batch, features, mean, std, bytes: true, storage };
      const eps = 0.05;
      // PGD: random start, then one step from it; FGSM: one step from the clean values.
      const adv = poisoned(gpu, "adv", n);
      const x = poisoned(gpu, "x", n, storage);
      const seed = 1234;
      submitDispatches(gpu, [
        await attackStart(kernels, {
          ...common,
          adv,
          x,
          eps,
          seed,
          stream: ADVERSARIAL_STREAM + 2,
          cursor,
          cursorIndex: 1,
        }),
      ]);
      const start = attackStartRef(clean, {
        epsRaw: eps * 255,
        hi: 255,
        seed,
        stream: ADVERSARIAL_STREAM + 2,
        batchIndex: 3,
      });
      const started = await gpu.readF32(adv, n);
      assertClose(started, start, { atol: 1e-4, rtol: 0, label: `attack_start ${shape} adv` });
      assertClose(
        await gpu.readValues(x, n, storage),
        normaliseRef(started, features, mean, std, true),
        { ...inputTolerance(storage), label: `attack_start ${shape} x` },
      );
      // The start moves values (it is not the identity) within the ε-ball and [0, 255].
      const moved = start.filter((v, i) => v !== clean[i]).length;
      assert.ok(moved > n / 2, `attack_start ${shape}: ${moved} of ${n} values moved`);
      assert.ok(start.every((v, i) => Math.abs(v - clean[i]!) <= eps * 255 + 1e-9));
      for (const fromClean of [false, true]) {
        const step = fromClean ? eps : eps / 2;
        const before = await gpu.readF32(adv, n);
        submitDispatches(gpu, [
          await attackStep(kernels, {
            ...common,
            adv,
            x,
            eps,
            step,
            grad: gradBuffer,
            fromClean,
          }),
        ]);
        const expected = attackStepRef(clean, before, grad, {
          epsRaw: eps * 255,
          stepRaw: step * 255,
          hi: 255,
          fromClean,
        });
        const label = `attack_step ${fromClean ? "FGSM" : "PGD"} ${shape}`;
        const after = await gpu.readF32(adv, n);
        assertClose(after, expected, { atol: 1e-4, rtol: 0, label: `${label} adv` });
        assertClose(
          await gpu.readValues(x, n, storage),
          normaliseRef(after, features, mean, std, true),
          { ...inputTolerance(storage), label: `${label} x` },
        );
        if (fromClean) {
          // FGSM is clip(clean + ε·sign(g), [0, 255]) exactly in closed form.
          const closed = Float64Array.from(
            clean,
            (c, i) => Math.min(255, Math.max(0, c + eps * 255 * Math.sign(grad[i]!))),
          );
          assertClose(after, closed, { atol: 1e-4, rtol: 0, label: `${label} closed form` });
        }
      }
      for (const b of [cleanBuffer, gradBuffer, cursor, adv, x]) b.destroy();
    });
  }
}

Deno.test("adversarial: ε and the step are in [0, 1] pixel units; bad arguments name themselves", async () => {
  const { gpu, kernels } = await testGpu();
  const b = gpu.storage("b", 64);
  const args = {
    clean: b,
    adv: b,
    x: b,
    grad: b,
    batch: 2,
    features: 8,
    mean: [0.5],
    std: [0.25],
    bytes: true,
    fromClean: true,
  };
  await assert.rejects(
    () => attackStep(kernels, { ...args, eps: 1.5, step: 0.1 }),
    /eps must be in \[0, 1\]/,
  );
  await assert.rejects(
    () => attackStep(kernels, { ...args, eps: 0.1, step: -1 }),
    /step must be in/,
  );
  await assert.rejects(
    () => attackStep(kernels, { ...args, eps: 0.1, step: 0.1, features: 9 }),
    /buffer clean .* needs 18 f32 values/,
  );
  b.destroy();
});

for (const storage of ["f32", "f16"] as const) {
  Deno.test(`image_view: identity, flips and shifts with zero fill, normalised (${storage})`, async () => {
    const { gpu, kernels } = await testGpu();
    for (const [batch, image] of [[1, [1, 5, 7]], [6, [3, 9, 4]], [67, [2, 3, 3]]] as const) {
      const [channels, height, width] = image;
      const features = channels * height * width;
      const n = batch * features;
      const raw = rawBytes(n, n);
      const mean = Array.from(uniformF32(channels, n + 1, 0.1, 0.6));
      const std = Array.from(uniformF32(channels, n + 2, 0.2, 0.4));
      const rawBuffer = gpu.storage("raw", raw);
      const views = [
        { dy: 0, dx: 0, flip: false },
        { dy: 0, dx: 0, flip: true },
        { dy: 2, dx: -1, flip: false },
        { dy: -1, dx: 3, flip: true },
        { dy: 0, dx: -width, flip: false }, // everything outside: all zero pixels
      ];
      for (const view of views) {
        const out = poisoned(gpu, "view", n, storage);
        submitDispatches(gpu, [
          await imageView(kernels, {
            raw: rawBuffer,
            out,
            batch,
            features,
            image: { channels, height, width },
            mean,
            std,
            bytes: true,
            view,
            storage,
          }),
        ]);
        const expected = normaliseRef(
          imageViewRef(raw, batch, { channels, height, width }, view),
          features,
          mean,
          std,
          true,
        );
        assertClose(await gpu.readValues(out, n, storage), expected, {
          ...inputTolerance(storage),
          label: `image_view ${channels}×${height}×${width} B=${batch} ${JSON.stringify(view)}`,
        });
        out.destroy();
      }
      rawBuffer.destroy();
    }
  });
}

Deno.test("image_view: rows that are not images have the identity view only", async () => {
  const { gpu, kernels } = await testGpu();
  const raw = uniformF32(3 * 10, 5, -2, 2);
  const rawBuffer = gpu.storage("raw", raw);
  const out = poisoned(gpu, "out", 30);
  const args = { raw: rawBuffer, out, batch: 3, features: 10, mean: [0], std: [1], bytes: false };
  submitDispatches(gpu, [await imageView(kernels, args)]);
  assertClose(await gpu.readF32(out, 30), Float64Array.from(raw), {
    atol: 0,
    rtol: 0,
    label: "image_view identity of f32 features (mean 0, std 1)",
  });
  await assert.rejects(
    () => imageView(kernels, { ...args, view: { dy: 0, dx: 0, flip: true } }),
    /only images have shifted or flipped views/,
  );
  rawBuffer.destroy();
  out.destroy();
});

for (const storage of ["f32", "f16"] as const) {
  Deno.test(`predictions count_predictions: confusion counts and binary scores vs CPU (${storage})`, async () => {
    const { gpu, kernels } = await testGpu();
    // [batch, width, classes, rows]: multi-class with a partial batch, CE binary, one logit.
    const cases = [[130, 10, 10, 117], [7, 2, 2, 7], [70, 1, 2, 33]] as const;
    for (const [batch, width, classes, rows] of cases) {
      // Logits as stored (f16-rounded when f16), with ties: the lowest index wins.
      const logits = storedAs(uniformF32(batch * width, batch + width, -3, 3), storage);
      for (let r = 0; r < batch; r += 5) if (width > 2) logits[r * width + 3] = logits[r * width]!;
      const labels = integers(batch, classes, batch * 3 + width);
      const counts = gpu.storage("counts", new Uint32Array(classes * classes + 1));
      const logitBuffer = gpu.storage("logits", storageArray(logits, storage));
      const labelBuffer = gpu.storage("labels", labels);
      const scoreCount = 2 * batch + 5;
      const scores = width <= 2 ? poisoned(gpu, "scores", scoreCount) : undefined;
      const cursor = gpu.storage("cursor", new Uint32Array([0, 1, 0, 0]));
      submitDispatches(gpu, [
        await countPredictions(kernels, {
          logits: logitBuffer,
          labels: labelBuffer,
          counts,
          batch,
          rows,
          width,
          classes,
          scores: scores && { buffer: scores, count: scoreCount, cursor, cursorIndex: 1 },
          storage,
        }),
      ]);
      const label = `count_predictions B=${batch} width=${width} rows=${rows} ${storage}`;
      assert.deepStrictEqual(
        Array.from(await gpu.readU32(counts, classes * classes + 1)),
        confusionRef(logits, labels, rows, width, classes),
        label,
      );
      if (scores) {
        const got = await gpu.readF32(scores, scoreCount);
        // Batch 1 of the split: positions batch .. batch + rows; the rest untouched (NaN).
        const expected = Float64Array.from(
          { length: scoreCount },
          (_, q) => q >= batch && q < batch + rows ? scoreRef(logits, q - batch, width) : NaN,
        );
        for (let q = 0; q < scoreCount; q++) {
          if (Number.isNaN(expected[q]!)) {
            assert.ok(Number.isNaN(got[q]!), `${label}: score ${q} written`);
          } else {
            assert.ok(Math.abs(got[q]! - expected[q]!) <= 1e-6, `${label}: score ${q}`);
          }
        }
        scores.destroy();
      }
      for (const b of [counts, logitBuffer, labelBuffer, cursor]) b.destroy();
    }
  });
}

Deno.test("predictions sum_logits: written by the first view, added by the next (f16 views)", async () => {
  const { gpu, kernels } = await testGpu();
  const n = 1031;
  const views = [0, 1, 2].map((k) => storedAs(uniformF32(n, 40 + k, -4, 4), "f16"));
  const sum = poisoned(gpu, "sum", n);
  const dispatches = [];
  for (const [k, v] of views.entries()) {
    const logits = gpu.storage(`view ${k}`, storageArray(v, "f16"));
    dispatches.push(
      await sumLogits(kernels, { logits, sum, n, accumulate: k > 0, storage: "f16" }),
    );
  }
  submitDispatches(gpu, dispatches);
  const expected = Float64Array.from({ length: n }, (_, i) => views.reduce((s, v) => s + v[i]!, 0));
  assertClose(await gpu.readF32(sum, n), expected, {
    atol: 1e-6,
    rtol: 1e-6,
    label: "sum_logits of 3 views",
  });
});
