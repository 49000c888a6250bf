/**
 * position_encoding (wgsl/position_encoding.wgsl): bits, multi-scale sinusoids and random Fourier
 * features against the float64 reference (exact phases), at row counts and widths that are not
 * workgroup multiples, with poisoned outputs, for positions in one word (< 2^24) and in two (up
 * to 2^48, past 2^32), read from the first columns of wider rows.
 */

import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import {
  positionEncoding,
  type PositionEncodingKind,
  positionFrequencies,
  positionTable,
} from "../core/ops/position_encoding.ts";
import { exactPhase, positionEncodingRef } from "./reference/position_encoding.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { rng } from "./helpers/random.ts";

/** Positions: small ones, word edges, and (two words) values past 2^32 up to 2^48 − 1. */
function positions(count: number, words: number, seed: number): number[] {
  const random = rng(seed);
  const edges = words === 1
    ? [0, 1, 2, 4095, 4096, 2 ** 24 - 1]
    : [0, 2 ** 24 - 1, 2 ** 24, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 12345, 2 ** 48 - 1];
  const limit = words === 1 ? 2 ** 24 : 2 ** 48;
  return Array.from(
    { length: count },
    (_, i) => i < edges.length ? edges[i]! : Math.floor(random() * limit),
  );
}

async function encodeOnGpu(
  ps: number[],
  words: number,
  stride: number,
  kind: PositionEncodingKind,
  features: number,
  frequencies: Float64Array,
): Promise<Float32Array> {
  const { gpu, kernels } = await testGpu();
  const rows = ps.length;
  const x = new Float32Array(rows * stride).fill(7.5);
  ps.forEach((p, r) => {
    x[r * stride] = p % 2 ** 24;
    if (words === 2) x[r * stride + 1] = Math.floor(p / 2 ** 24);
  });
  const xb = gpu.storage("positions", x);
  const out = poisoned(gpu, "encoding", rows * features);
  const table = gpu.storage("table", positionTable(frequencies));
  submitDispatches(gpu, [
    await positionEncoding(kernels, { x: xb, out, table, rows, stride, words, features, kind }),
  ]);
  const got = await gpu.readF32(out, rows * features);
  for (const b of [xb, out, table]) b.destroy();
  return got;
}

Deno.test("position reference: exact phases match float64 products where those are exact", () => {
  assert.strictEqual(exactPhase(3, 0.5), 0.5);
  assert.strictEqual(exactPhase(2 ** 40 + 1, 0.25), 0.25);
  assert.strictEqual(exactPhase(5, -0.25), 0.75);
  const random = rng(3);
  for (let i = 0; i < 100; i++) {
    const p = Math.floor(random() * 1000);
    const f = random() - 0.5;
    const naive = p * f - Math.floor(p * f);
    assert.ok(Math.abs(exactPhase(p, f) - naive) < 1e-12, `p ${p} f ${f}`);
  }
});

for (const words of [1, 2]) {
  for (
    const [kind, features] of [["bits", 37], ["bits", 48], ["sin", 22], ["fourier", 18]] as const
  ) {
    Deno.test(`position_encoding ${kind} (${features} features, ${words} word${words > 1 ? "s" : ""}) equals float64`, async () => {
      const ps = positions(301, words, 11 * words + features);
      const frequencies = kind === "bits"
        ? new Float64Array()
        : positionFrequencies(kind, features, { scale: 3, seed: 5 });
      const got = await encodeOnGpu(ps, words, 3, kind, features, frequencies);
      const want = positionEncodingRef(ps, kind, features, frequencies);
      // The phase keeps ~2^-21 turns at any position; f32 sin/cos add ~1e-7.
      assertClose(got, want, {
        atol: kind === "bits" ? 0 : 2e-5,
        rtol: 0,
        label: `${kind} ${words} words`,
      });
    });
  }
}

Deno.test("position_encoding: multi-scale frequencies follow base^(−2k/d); bad arguments fail", () => {
  const f = positionFrequencies("sin", 8, { base: 10000 });
  assertClose(Array.from(f, (v) => v * 2 * Math.PI), [1, 0.1, 0.01, 0.001], {
    atol: 1e-15,
    rtol: 1e-12,
    label: "ω_k",
  });
  assert.throws(() => positionFrequencies("sin", 7), /even integer/);
});
