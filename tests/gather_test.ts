import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { AUGMENT_STREAM, type GatherArgs, gatherBatch, packBytes } from "../core/ops/gather.ts";
import { type AugmentRef, gatherRef, resizedBoxRef, unpackByte } from "./reference/gather.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, poisonedU32, testGpu } from "./helpers/gpu.ts";
import { integers, uniformF32 } from "./helpers/random.ts";

const ROWS = 53;
// 784 = 4·196 and 3267 = 3·33·33 exercise 4 and 3 statistics; 1 and 7 straddle words.
const ROW_SHAPES = [[1, 1], [7, 1], [784, 4], [3 * 33 * 33, 3], [10, 10]] as const;
const BATCHES = [1, 7, 130];

/** A random dataset of `rows` rows of d values (bytes or floats) with u32 labels, on the GPU. */
async function dataset(d: number, seed: number, float = false, rows = ROWS) {
  const { gpu } = await testGpu();
  const values = float
    ? uniformF32(rows * d, seed, -3, 3)
    : Uint8Array.from(integers(rows * d, 256, seed));
  const labels = integers(rows, 1000, seed + 1);
  return {
    values,
    labels,
    data: gpu.storage(`gather data d=${d}`, float ? values : packBytes(values as Uint8Array)),
    labelData: gpu.storage(`gather labels d=${d}`, labels),
  };
}

function stats(count: number, seed: number) {
  const mean = Array.from(uniformF32(count, seed, 0.2, 0.6));
  const std = Array.from(uniformF32(count, seed + 1, 0.15, 0.35));
  return { mean, std };
}

Deno.test("packBytes: byte j is bits 8·(j % 4) of word j / 4, last word zero-padded", () => {
  for (const n of [0, 1, 5, 8, 1001]) {
    const bytes = Uint8Array.from(integers(n, 256, n + 3));
    const words = packBytes(bytes);
    assert.strictEqual(words.length, Math.ceil(n / 4), `packBytes n=${n} length`);
    for (let j = 0; j < 4 * words.length; j++) {
      assert.strictEqual(unpackByte(words, j), j < n ? bytes[j] : 0, `packBytes n=${n} byte ${j}`);
    }
  }
});

for (const float of [false, true]) {
  for (const [d, statCount] of ROW_SHAPES) {
    const type = float ? "f32" : "u8";
    Deno.test(`gather_batch ${type} D=${d} S=${statCount}: x and labels vs float64, start > 0, masked rows`, async () => {
      const { gpu, kernels } = await testGpu();
      const set = await dataset(d, d, float);
      const { mean, std } = stats(statCount, d + 7);
      for (const batch of BATCHES) {
        // Random row ids with repeats (2·batch + 9 draws from 53 rows), read from offset `start`.
        const indices = integers(2 * batch + 9, ROWS, batch * d + 1);
        const indexBuffer = gpu.storage("gather indices", indices);
        for (const [start, valid] of [[5, batch], [batch + 3, Math.floor(batch / 2)]] as const) {
          const cursor = gpu.storage("gather cursor", new Uint32Array([777, start]));
          const x = poisoned(gpu, "gather x", batch * d);
          const y = poisonedU32(gpu, "gather y", batch);
          const indexCount = start + valid;
          const dispatch = await gatherBatch(kernels, {
            data: set.data,
            float,
            labels: set.labelData,
            indices: indexBuffer,
            indexCount,
            cursor,
            cursorIndex: 1,
            x,
            y,
            batch,
            features: d,
            mean,
            std,
          });
          submitDispatches(gpu, [dispatch]);
          const expected = gatherRef({
            data: set.values,
            float,
            labels: set.labels,
            indices,
            indexCount,
            start,
            batch,
            features: d,
            mean,
            std,
          });
          const label =
            `gather_batch ${type} D=${d} S=${statCount} B=${batch} start=${start} valid=${valid}`;
          // Values up to |(3 − 0.2)/0.15| ≈ 19 from v·scale + shift: three f32 roundings.
          assertClose(await gpu.readF32(x, batch * d), expected.x, {
            atol: 4e-6,
            rtol: 1e-6,
            label,
          });
          assert.deepStrictEqual(await gpu.readU32(y, batch), expected.y, `${label} labels`);
          cursor.destroy();
          x.destroy();
          y.destroy();
        }
        indexBuffer.destroy();
      }
      set.data.destroy();
      set.labelData.destroy();
    });
  }
}

Deno.test("gather_batch: one Dispatch follows the step-in-epoch cursor (cursorStride = batch)", async () => {
  const { gpu, kernels } = await testGpu();
  const d = 7;
  const batch = 7;
  const set = await dataset(d, 99);
  const indices = integers(4 * batch + 2, ROWS, 5);
  const indexBuffer = gpu.storage("gather indices", indices);
  const cursor = gpu.storage("gather step-in-epoch", new Uint32Array([0]));
  const x = poisoned(gpu, "gather x", batch * d);
  const y = poisonedU32(gpu, "gather y", batch);
  const args: GatherArgs = {
    data: set.data,
    labels: set.labelData,
    indices: indexBuffer,
    cursor,
    cursorStride: batch,
    x,
    y,
    batch,
    features: d,
    mean: [0.45],
    std: [0.22],
  };
  const dispatch = await gatherBatch(kernels, args);
  // Steps 0..4 of an epoch of 30 rows: step 4 is the partial batch with 2 valid rows.
  for (const step of [0, 3, 1, 4]) {
    gpu.write(cursor, new Uint32Array([step]));
    submitDispatches(gpu, [dispatch]);
    const expected = gatherRef({
      ...args,
      augment: undefined,
      data: set.values,
      labels: set.labels,
      indices,
      indexCount: indices.length,
      start: step * batch,
    });
    const label = `gather_batch step-in-epoch D=${d} B=${batch} step=${step}`;
    assertClose(await gpu.readF32(x, batch * d), expected.x, { atol: 2e-6, rtol: 1e-6, label });
    assert.deepStrictEqual(await gpu.readU32(y, batch), expected.y, `${label} labels`);
  }
  for (const b of [set.data, set.labelData, indexBuffer, cursor, x, y]) b.destroy();
});

Deno.test("gather_batch streamed: position q reads row q mod R of slot (q / R) mod 2, labels by index", async () => {
  const { gpu, kernels } = await testGpu();
  const d = 5;
  const chunkRows = 6;
  const batch = 4;
  for (const float of [false, true]) {
    // Chunks 0..2 of 6, 6 and 3 rows; slots hold chunk 2 (slot 0) and chunk 1 (slot 1).
    const chunks = [0, 1, 2].map((k) =>
      float
        ? uniformF32(chunkRows * d, 40 + k, -2, 2)
        : Uint8Array.from(integers(chunkRows * d, 256, 40 + k))
    );
    const upload = (v: Uint8Array | Float32Array) =>
      gpu.storage("gather slot", float ? v : packBytes(v as Uint8Array));
    const slot0 = upload(chunks[2]!);
    const slot1 = upload(chunks[1]!);
    const labels = integers(20, 50, 3);
    const labelData = gpu.storage("gather labels", labels);
    const indices = integers(15, 20, 4);
    const indexBuffer = gpu.storage("gather indices", indices);
    const cursor = gpu.storage("gather cursor", new Uint32Array(1));
    const x = poisoned(gpu, "gather x", batch * d);
    const y = poisonedU32(gpu, "gather y", batch);
    const args: GatherArgs = {
      data: slot0,
      dataB: slot1,
      float,
      labels: labelData,
      indices: indexBuffer,
      indexCount: 15,
      cursor,
      cursorStride: batch,
      chunkRows,
      x,
      y,
      batch,
      features: d,
      mean: [0.1],
      std: [0.7],
    };
    const dispatch = await gatherBatch(kernels, args);
    // Batches 2 and 3 cover positions 8..15: chunk 1 (slot 1), then chunk 2 (slot 0), then masked.
    for (const step of [2, 3]) {
      gpu.write(cursor, new Uint32Array([step]));
      submitDispatches(gpu, [dispatch]);
      const expected = gatherRef({
        data: new Uint8Array(0),
        float,
        labels,
        indices,
        indexCount: 15,
        start: step * batch,
        batch,
        features: d,
        mean: [0.1],
        std: [0.7],
        chunks,
        chunkRows,
      });
      const label = `streamed gather ${float ? "f32" : "u8"} step ${step}`;
      assertClose(await gpu.readF32(x, batch * d), expected.x, { atol: 2e-6, rtol: 1e-6, label });
      assert.deepStrictEqual(await gpu.readU32(y, batch), expected.y, `${label} labels`);
    }
    for (const b of [slot0, slot1, labelData, indexBuffer, cursor, x, y]) b.destroy();
  }
});

/** Runs an augmented gather of `batch` rows 0.. of a random image set; returns GPU and reference. */
async function augmented(
  shape: [number, number, number],
  batch: number,
  augment: Omit<AugmentRef, "channels" | "height" | "width" | "stream" | "step">,
  float: boolean,
  step: number,
) {
  const { gpu, kernels } = await testGpu();
  const [channels, height, width] = shape;
  const d = channels * height * width;
  const rows = batch + 3;
  const set = await dataset(d, 7 * d + step, float, rows);
  const indices = Uint32Array.from({ length: batch }, (_, i) => (i * 5 + 2) % rows);
  const indexBuffer = gpu.storage("gather indices", indices);
  // Word 1 is the data cursor (batch 0), word 2 the step the augmentation is keyed by.
  const cursor = gpu.storage("gather counters", new Uint32Array([0, 0, step, 0]));
  const x = poisoned(gpu, "gather x", batch * d);
  const y = poisonedU32(gpu, "gather y", batch);
  // Identity normalisation (v·1 + 0), so the values are the data's own, bit for bit.
  const identity = { mean: [0], std: [float ? 1 : 1 / 255] };
  const dispatch = await gatherBatch(kernels, {
    data: set.data,
    float,
    labels: set.labelData,
    indices: indexBuffer,
    cursor,
    cursorIndex: 1,
    cursorStride: batch,
    x,
    y,
    batch,
    features: d,
    ...identity,
    augment: { channels, height, width, ...augment, counterIndex: 2 },
  });
  submitDispatches(gpu, [dispatch]);
  const ref = { channels, height, width, ...augment, stream: AUGMENT_STREAM, step };
  const expected = gatherRef({
    data: set.values,
    float,
    labels: set.labels,
    indices,
    indexCount: batch,
    start: 0,
    batch,
    features: d,
    ...identity,
    augment: ref,
  });
  const got = await gpu.readF32(x, batch * d);
  const labels = await gpu.readU32(y, batch);
  for (const b of [set.data, set.labelData, indexBuffer, cursor, x, y]) b.destroy();
  return { got, expected, labels, ref };
}

Deno.test("gather_batch augmentation: crop with padding and flip match the CPU reference bit for bit", async () => {
  for (const float of [false, true]) {
    for (
      const [shape, padding, flip] of [[[3, 5, 7], 2, 0.5], [[1, 28, 28], 4, 0], [
        [2, 4, 9],
        0,
        1,
      ]] as const
    ) {
      const batch = 13;
      const step = 9;
      const { got, expected, labels } = await augmented(
        [...shape],
        batch,
        { padding, flip, seed: 1234 },
        float,
        step,
      );
      const label = `crop ${padding} flip ${flip} ${shape.join("×")} ${float ? "f32" : "u8"}`;
      assert.deepStrictEqual(Array.from(got), Array.from(expected.x, Math.fround), label);
      assert.deepStrictEqual(labels, expected.y, `${label} labels`);
    }
  }
  // The draws move: at step 9 some rows are flipped and some are not, offsets differ by row.
  const d = 5 * 7;
  const { got } = await augmented([1, 5, 7], 16, { padding: 2, flip: 0.5, seed: 3 }, false, 9);
  const plain = await augmented([1, 5, 7], 16, { padding: 0, flip: 0, seed: 3 }, false, 9);
  const same = Array.from(
    { length: 16 },
    (_, r) => got.subarray(r * d, (r + 1) * d).every((v, j) => v === plain.got[r * d + j]),
  );
  assert.ok(same.some((s) => !s) && same.filter((s) => !s).length >= 10, `rows augmented: ${same}`);
});

Deno.test("gather_batch augmentation: random resized crop matches the CPU reference", async () => {
  const cases = [
    [[1, 9, 11], [0.4, 1], [1, 1], 0, 0],
    [[3, 8, 8], [0.08, 1], [3 / 4, 4 / 3], 0, 0.5],
    [[2, 6, 10], [0.5, 0.9], [0.5, 2], 1, 1],
  ] as const;
  for (const [shape, scale, ratio, padding, flip] of cases) {
    const batch = 11;
    const { got, expected, ref } = await augmented(
      [...shape],
      batch,
      { padding, flip, seed: 77, resized: { scale, ratio } },
      false,
      5,
    );
    // Bilinear weights in f32 against float64: a few roundings of values up to 255.
    assertClose(got, expected.x, {
      atol: 2e-4,
      rtol: 1e-5,
      label: `resized crop ${shape.join("×")} scale ${scale} ratio ${ratio}`,
    });
    const boxes = Array.from({ length: batch }, (_, r) => resizedBoxRef(ref, r).join(","));
    assert.ok(new Set(boxes).size > 3, `boxes differ between rows: ${boxes.join(" ")}`);
  }
});

Deno.test("gatherBatch rejects bad statistics, counts, augmentation and small outputs", async () => {
  const { gpu, kernels } = await testGpu();
  const b = gpu.storage("gather validation", 64);
  const base: GatherArgs = {
    data: b,
    labels: b,
    indices: b,
    cursor: b,
    x: b,
    y: b,
    batch: 2,
    features: 6,
    mean: [0.5, 0.5, 0.5],
    std: [0.2, 0.2, 0.2],
  };
  await assert.rejects(
    () => gatherBatch(kernels, { ...base, mean: [0.5, 0.5, 0.5, 0.5], std: [1, 1, 1, 1] }),
    /dividing 6/,
  );
  await assert.rejects(() => gatherBatch(kernels, { ...base, mean: [0.5] }), /same count/);
  await assert.rejects(
    () => gatherBatch(kernels, { ...base, std: [0.2, 0, 0.2] }),
    /std must be finite and > 0, got std\[1\] = 0/,
  );
  await assert.rejects(() => gatherBatch(kernels, { ...base, indexCount: 17 }), /indexCount 17/);
  await assert.rejects(() => gatherBatch(kernels, { ...base, cursorIndex: 16 }), /cursorIndex 16/);
  const augment = {
    channels: 1,
    height: 2,
    width: 3,
    padding: 1,
    flip: 0.5,
    seed: 0,
    counterIndex: 0,
  };
  await assert.rejects(
    () => gatherBatch(kernels, { ...base, augment: { ...augment, width: 4 } }),
    /channels × height × width = 6/,
  );
  await assert.rejects(
    () => gatherBatch(kernels, { ...base, augment: { ...augment, flip: 2 } }),
    /flip probability/,
  );
  await assert.rejects(
    () => gatherBatch(kernels, { ...base, batch: 3 }),
    /buffer x .*needs 18 f32 values \(72 bytes\)/,
  );
  b.destroy();
});
