import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { type GatherArgs, gatherBatch, packBytes } from "../core/ops/gather.ts";
import { gatherRef, unpackByte } from "./reference/gather.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, poisonedU32, testGpu } from "./helpers/gpu.ts";
import { integers, uniformF32 } from "./helpers/random.ts";

const ROWS = 53;
// 784 = 4·196 and 3267 = 3·33·33 exercise 4 and 3 channels; 1 and 7 straddle words.
const ROW_SHAPES = [[1, 1], [7, 1], [784, 4], [3 * 33 * 33, 3]] as const;
const BATCHES = [1, 7, 130];

/** A random dataset of ROWS rows of d bytes with labels, on the CPU and packed on the GPU. */
async function dataset(d: number, seed: number) {
  const { gpu } = await testGpu();
  const bytes = Uint8Array.from(integers(ROWS * d, 256, seed));
  const labels = Uint8Array.from(integers(ROWS, 256, seed + 1));
  return {
    bytes,
    labels,
    data: gpu.storage(`gather data d=${d}`, packBytes(bytes)),
    labelData: gpu.storage(`gather labels d=${d}`, packBytes(labels)),
  };
}

function stats(channels: number, seed: number) {
  const mean = Array.from(uniformF32(channels, seed, 0.2, 0.6));
  const std = Array.from(uniformF32(channels, seed + 1, 0.15, 0.35));
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

for (const [d, channels] of ROW_SHAPES) {
  Deno.test(`gather_batch D=${d} C=${channels}: x and labels vs float64, start > 0, masked rows`, async () => {
    const { gpu, kernels } = await testGpu();
    const set = await dataset(d, d);
    const { mean, std } = stats(channels, d + 7);
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
          labels: set.labelData,
          indices: indexBuffer,
          indexCount,
          cursor,
          cursorIndex: 1,
          x,
          y,
          batch,
          rowBytes: d,
          channels,
          mean,
          std,
        });
        submitDispatches(gpu, [dispatch]);
        const expected = gatherRef({
          data: set.bytes,
          labels: set.labels,
          indices,
          indexCount,
          start,
          batch,
          rowBytes: d,
          channels,
          mean,
          std,
        });
        const label = `gather_batch D=${d} C=${channels} B=${batch} start=${start} valid=${valid}`;
        // Values up to |(1 − 0.2)/0.15| ≈ 5.3 from byte·scale + shift: three f32 roundings.
        assertClose(await gpu.readF32(x, batch * d), expected.x, { atol: 2e-6, rtol: 1e-6, label });
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
    rowBytes: d,
    channels: 1,
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
      data: set.bytes,
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

Deno.test("gatherBatch rejects bad channels, statistics, counts and small outputs", async () => {
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
    rowBytes: 6,
    channels: 3,
    mean: [0.5, 0.5, 0.5],
    std: [0.2, 0.2, 0.2],
  };
  await assert.rejects(() => gatherBatch(kernels, { ...base, channels: 4 }), /divide rowBytes 6/);
  await assert.rejects(() => gatherBatch(kernels, { ...base, mean: [0.5] }), /need 3 values/);
  await assert.rejects(
    () => gatherBatch(kernels, { ...base, std: [0.2, 0, 0.2] }),
    /std must be finite and > 0/,
  );
  await assert.rejects(() => gatherBatch(kernels, { ...base, indexCount: 17 }), /indexCount 17/);
  await assert.rejects(() => gatherBatch(kernels, { ...base, cursorIndex: 16 }), /cursorIndex 16/);
  await assert.rejects(
    () => gatherBatch(kernels, { ...base, batch: 3 }),
    /buffer x .*needs 18 f32 values \(72 bytes\)/,
  );
  b.destroy();
});
