import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { REDUCE_CHUNK, reducePlan, segmentReduce } from "../core/ops/reduce.ts";
import { segmentAbsSumRef, segmentSumRef } from "./reference/reduce.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { uniformF32 } from "./helpers/random.ts";

const U = 2 ** -24; // unit roundoff of f32

/**
 * A bound on the rounding error of the kernel's f32 sum of one segment of `size` values: every
 * value passes through at most d = 16 sequential adds in its invocation, 8 tree levels, ⌈K/256⌉
 * sequential adds of the segment's K partials and 8 more tree levels, plus one rounding of x² when
 * squaring; so |error| ≤ (d + 1)·u·Σ|x| (Higham, Accuracy and Stability, §4.2). A sequential f32
 * loop would need d = size − 1 instead.
 */
function errorBound(size: number, absSum: number): number {
  const partials = Math.ceil(size / REDUCE_CHUNK);
  const depth = 16 + 8 + Math.ceil(partials / 256) + 8 + 1;
  return 1.05 * depth * U * absSum;
}

/** Compares each segment's sum with the float64 reference within its own error bound. */
function checkSegments(
  got: Float32Array,
  x: Float32Array,
  offsets: number[],
  square: boolean,
  what: string,
  times = 1,
  initial?: Float32Array,
) {
  const ref = segmentSumRef(x, offsets, square);
  const scale = segmentAbsSumRef(x, offsets, square);
  for (let s = 0; s < ref.length; s++) {
    const size = offsets[s + 1]! - offsets[s]!;
    const init = initial?.[s] ?? 0;
    // Each of the `times` runs rounds once more when added into out.
    const atol = times * errorBound(size, scale[s]!) +
      times * U * (Math.abs(init) + times * scale[s]!);
    assertClose([got[s]!], [init + times * ref[s]!], {
      atol,
      rtol: 0,
      label: `reduce ${square ? "sumsq" : "sum"} ${what} segment ${s} (n=${size})`,
    });
  }
}

/** Segment offsets from sizes, starting at `start`. */
function offsetsOf(sizes: number[], start = 0): number[] {
  const offsets = [start];
  for (const n of sizes) offsets.push(offsets[offsets.length - 1]! + n);
  return offsets;
}

Deno.test("reducePlan: chunks stay inside one segment and cover each exactly once", () => {
  for (const sizes of [[1, 0, 33, 4096, 7, 70_001], [0], [4097, 0, 0, 8192], [1]]) {
    const offsets = offsetsOf(sizes, 3);
    const { chunks, segmentChunks } = reducePlan(offsets);
    for (let s = 0; s < sizes.length; s++) {
      const covered: number[] = [];
      for (let k = segmentChunks[s]!; k < segmentChunks[s + 1]!; k++) {
        const [start, end] = [chunks[2 * k]!, chunks[2 * k + 1]!];
        assert.ok(start < end && end - start <= REDUCE_CHUNK, `chunk ${k} = [${start}, ${end})`);
        for (let i = start; i < end; i++) covered.push(i);
      }
      const expected = Array.from({ length: sizes[s]! }, (_, i) => offsets[s]! + i);
      assert.deepStrictEqual(covered, expected, `segment ${s} of sizes ${sizes}`);
    }
    assert.strictEqual(chunks.length, 2 * segmentChunks[sizes.length]!);
  }
});

// 2 097 157 values need 513 partials: stage 2 loops more than once per invocation.
const WHOLE_SIZES = [1, 7, 257, 100_003, 2_097_157];

for (const square of [false, true]) {
  const name = square ? "sumsq" : "sum";
  Deno.test(`reduce ${name}: whole buffer against float64`, async () => {
    const { gpu, kernels } = await testGpu();
    for (const n of WHOLE_SIZES) {
      // Mean 0.5: sums grow with n (a long sum), with both signs present.
      const x = uniformF32(n, n + (square ? 1 : 0), -0.5, 1.5);
      const xb = gpu.storage("reduce x", x);
      const out = poisoned(gpu, "reduce out", 1);
      const owned: GPUBuffer[] = [];
      submitDispatches(
        gpu,
        await segmentReduce(kernels, { x: xb, offsets: [0, n], out, square, owned }),
      );
      checkSegments(await gpu.readF32(out, 1), x, [0, n], square, "whole buffer");
      if (n === WHOLE_SIZES[WHOLE_SIZES.length - 1]) {
        // The bound is tight enough to fail a sequential f32 loop over the same values.
        let naive = 0;
        for (const v of x) naive = Math.fround(naive + (square ? Math.fround(v * v) : v));
        const ref = segmentSumRef(x, [0, n], square)[0]!;
        const bound = errorBound(n, segmentAbsSumRef(x, [0, n], square)[0]!);
        assert.ok(
          Math.abs(naive - ref) > bound,
          `naive f32 error ${naive - ref} vs bound ${bound}`,
        );
      }
      for (const b of [xb, out, ...owned]) b.destroy();
    }
  });

  Deno.test(`reduce ${name}: segments of very different sizes, one empty`, async () => {
    const { gpu, kernels } = await testGpu();
    const sizes = [1, 0, 33, 4096, 7, 70_001, 4097];
    // NaN before the first and after the last segment: reading outside the segments shows.
    const offsets = offsetsOf(sizes, 5);
    const n = offsets[offsets.length - 1]! + 9;
    const x = uniformF32(n, 77 + (square ? 1 : 0), -0.5, 1.5);
    x.fill(Number.NaN, 0, 5).fill(Number.NaN, n - 9);
    const xb = gpu.storage("reduce x", x);
    // Sums at out[3 ..]: out[0 .. 3) must stay NaN.
    const out = poisoned(gpu, "reduce out", 3 + sizes.length);
    const owned: GPUBuffer[] = [];
    submitDispatches(
      gpu,
      await segmentReduce(kernels, { x: xb, offsets, out, outOffset: 3, square, owned }),
    );
    const got = await gpu.readF32(out);
    assert.ok(got.subarray(0, 3).every(Number.isNaN), `out before outOffset was written: ${got}`);
    checkSegments(got.subarray(3), x, offsets, square, `sizes [${sizes}]`);
    assert.strictEqual(got[3 + 1], 0, "the empty segment sums to 0");
    for (const b of [xb, out, ...owned]) b.destroy();
  });

  Deno.test(`reduce ${name}: accumulate mode adds each run's sums to out`, async () => {
    const { gpu, kernels } = await testGpu();
    const sizes = [33, 0, 4096, 70_001];
    const offsets = offsetsOf(sizes);
    const x = uniformF32(offsets[offsets.length - 1]!, 91, -0.5, 1.5);
    const initial = uniformF32(sizes.length, 92, -3, 3);
    const xb = gpu.storage("reduce x", x);
    const out = gpu.storage("reduce out", initial);
    const owned: GPUBuffer[] = [];
    const dispatches = await segmentReduce(kernels, {
      x: xb,
      offsets,
      out,
      square,
      accumulate: true,
      owned,
    });
    submitDispatches(gpu, dispatches);
    submitDispatches(gpu, dispatches);
    checkSegments(await gpu.readF32(out), x, offsets, square, "accumulate ×2", 2, initial);
    for (const b of [xb, out, ...owned]) b.destroy();
  });
}

Deno.test("reduce: only empty segments give zeros (no first-stage work)", async () => {
  const { gpu, kernels } = await testGpu();
  const xb = gpu.storage("reduce x", uniformF32(8, 3));
  const out = poisoned(gpu, "reduce out", 3);
  const owned: GPUBuffer[] = [];
  submitDispatches(gpu, await segmentReduce(kernels, { x: xb, offsets: [4, 4, 4, 4], out, owned }));
  assert.deepStrictEqual(Array.from(await gpu.readF32(out)), [0, 0, 0]);
  for (const b of [xb, out, ...owned]) b.destroy();
});

Deno.test("segmentReduce rejects bad offsets and a short output", async () => {
  const { gpu, kernels } = await testGpu();
  const x = gpu.storage("reduce x", 40);
  const out = gpu.storage("reduce out", 8);
  const cases: [number[], RegExp][] = [
    [[0], /at least 2 values/],
    [[0, 5, 3], /offsets\[2\] = 3 < offsets\[1\] = 5/],
    [[0, 11], /offsets\[1\] = 11 is not an integer in \[0, 10\]/],
    [[0, 1, 2, 3], /needs 12 for 3 sums/],
  ];
  for (const [offsets, message] of cases) {
    await assert.rejects(
      () => segmentReduce(kernels, { x, offsets, out }),
      (e: Error) => e instanceof RangeError && message.test(e.message),
    );
  }
  x.destroy();
  out.destroy();
});
