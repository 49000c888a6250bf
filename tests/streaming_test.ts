import assert from "node:assert";
import { advanceCounters } from "../core/gpu/counters.ts";
import { encode } from "../core/gpu/kernels.ts";
import { epochPermutation, gatherFor, type HostSplit } from "../core/train/data.ts";
import { ChunkSlots, EpochFeed, streamSplit } from "../core/train/streaming.ts";
import { resolveConfig } from "../core/train/config.ts";
import { train } from "../core/train/trainer.ts";
import { seededRandom } from "../core/util/random.ts";
import { builtinRegistry } from "../plugins/mod.ts";
import { testGpu } from "./helpers/gpu.ts";

Deno.test("streaming: an epoch visits every sample exactly once, in the epoch's shuffled order", async () => {
  const { gpu, kernels } = await testGpu();
  const scope = gpu.scope("streaming test");
  const k = kernels.withGpu(scope);
  try {
    const d = 3;
    const rows = 70;
    const batch = 5;
    // Row i holds [i, i + 0.25, −i]; the split's positions are a reordering of the rows (as a
    // validation split makes), and 60 of its 70 positions are the epoch's.
    const samples = Float32Array.from({ length: rows * d }, (_, j) => {
      const i = Math.floor(j / d);
      return [i, i + 0.25, -i][j % d]!;
    });
    const labels = Uint32Array.from({ length: rows }, (_, i) => i);
    const order = epochPermutation(rows, 99, 0, seededRandom);
    const host: HostSplit = { samples, labels, features: d, rows: order, count: rows };
    const count = 60;
    // Slots of 4 steps (20 rows of 12 bytes = 240 bytes): 3 chunks per epoch.
    const slots = new ChunkSlots(scope, 20 * d * 4 + 8);
    const split = streamSplit(scope, "train", host, slots);
    const feed = new EpochFeed(split.stream!, batch, count, "test");
    assert.strictEqual(feed.chunkRows, 20);
    const counters = scope.storage("counters", new Uint32Array(4));
    const indices = scope.storage("epoch indices", count * 4);
    const x = scope.storage("x", batch * d * 4);
    const y = scope.storage("y", batch * 4);
    const steps = count / batch;
    const seen = scope.storage("x of every step", steps * batch * d * 4);
    const seenLabels = scope.storage("y of every step", steps * batch * 4);
    const gather = await gatherFor(k, split, {
      info: { features: d, classes: rows },
      mean: [0],
      std: [1],
    }, {
      indices,
      indexCount: count,
      cursor: counters,
      cursorIndex: 1,
      x,
      y,
      batch,
      chunkRows: feed.chunkRows,
      label: "streamed gather",
    });
    const next = await advanceCounters(k, counters, { 1: 1 });
    for (const epoch of [0, 1]) {
      const perm = epochPermutation(count, 5, epoch, seededRandom);
      scope.write(indices, perm);
      scope.write(counters, new Uint32Array(4));
      feed.beginEpoch(epoch, perm);
      // Submissions of up to 3 steps that never cross a chunk, as the trainer makes them.
      for (let s = 0; s < steps;) {
        const n = Math.min(3, steps - s, feed.stepsLeftInChunk(s));
        feed.prepare(s);
        const encoder = scope.device.createCommandEncoder();
        for (let t = s; t < s + n; t++) {
          const pass = encoder.beginComputePass();
          encode(pass, [gather, next]);
          pass.end();
          encoder.copyBufferToBuffer(x, 0, seen, t * batch * d * 4, batch * d * 4);
          encoder.copyBufferToBuffer(y, 0, seenLabels, t * batch * 4, batch * 4);
        }
        scope.submit([encoder.finish()]);
        feed.prefetch(s + n);
        s += n;
      }
      const got = await scope.readF32(seen);
      const gotLabels = await scope.readU32(seenLabels);
      // Position q of the epoch is split position perm[q], i.e. dataset row order[perm[q]].
      const expected = Array.from(perm, (p) => order[p]!);
      const ids = Array.from({ length: count }, (_, q) => got[q * d]!);
      assert.deepStrictEqual(ids, expected, `epoch ${epoch}: rows in the epoch's order`);
      assert.strictEqual(new Set(ids).size, count, `epoch ${epoch}: every sample once`);
      for (let q = 0; q < count; q++) {
        assert.strictEqual(got[q * d + 1], ids[q]! + 0.25);
        assert.strictEqual(got[q * d + 2], -ids[q]!);
        assert.strictEqual(gotLabels[q], labels[order[perm[q]!]!], `epoch ${epoch} label ${q}`);
      }
    }
    assert.strictEqual(slots.writes, 6, "3 chunks per epoch, each written once");
  } finally {
    scope.dispose();
  }
});

Deno.test("streaming: a run with --data-chunk-mb trains on the same batches as a resident one", async () => {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  const run = async (chunkMb: number) => {
    const config = resolveConfig(registry, [{
      source: "test",
      values: {
        dataset: "synthetic",
        synthetic_features: 32,
        synthetic_train: 512,
        synthetic_test: 200,
        model: "mlp",
        widths: "16",
        batch_size: 32,
        epochs: 2,
        val_split: 0.25,
        seed: 3,
        data_chunk_mb: chunkMb,
      },
    }]);
    const outDir = await Deno.makeTempDir({ prefix: "stream-" });
    let dataBytes = 0;
    const events = {
      start: (info: { memory: Record<string, number> }) => (dataBytes = info.memory.data!),
    };
    try {
      return { ...await train({ gpu, kernels, registry, config, outDir, events }), dataBytes };
    } finally {
      await Deno.remove(outDir, { recursive: true });
    }
  };
  const resident = await run(0);
  // 4 KiB chunks: 4 steps of 32 rows of 32 bytes; the validation and test splits stream too.
  const streamed = await run(4 / 1024);
  assert.strictEqual(streamed.test_loss, resident.test_loss);
  assert.strictEqual(streamed.val_loss, resident.val_loss);
  assert.strictEqual(streamed.test_accuracy, resident.test_accuracy);
  assert.strictEqual(streamed.steps, resident.steps);
  assert.ok(resident.test_accuracy > 0.5, `the run learned: ${resident.test_accuracy}`);
  // Resident: 512·32 + 200·32 sample bytes; streamed: two 4 KiB slots (labels in both).
  assert.strictEqual(resident.dataBytes - streamed.dataBytes, 512 * 32 + 200 * 32 - 2 * 4096);
});
