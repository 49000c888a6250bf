/**
 * `wgsl/topk_mask.wgsl` against its float64 reference: the mask holds exactly k ones (the k
 * largest scores among the candidates, ties to the lower index) and zeros elsewhere — padding
 * between segments included — over sizes that cross chunks (and the 256-chunk block of the tie
 * scan), with heavy ties, |values|, live/dead filters, a union, a per-epoch k table and random
 * scores regenerated on the CPU.
 */

import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { segmentTable } from "../core/ops/optimizer.ts";
import { createCounters } from "../core/gpu/counters.ts";
import { type TopkCandidates, topkMask, type TopkScore } from "../core/ops/topk_mask.ts";
import { randomScoreRef, topkMaskRef } from "./reference/topk_mask.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { integers, uniformF32 } from "./helpers/random.ts";

interface Case {
  n: number;
  /** Segments [start, end) with gaps between them. */
  segments: [number, number][];
  score: TopkScore;
  candidates: TopkCandidates;
  ks: number[];
  /** Scores drawn from this many distinct values (ties), or continuous when absent. */
  levels?: number;
  or?: boolean;
  step?: number;
  stepsPerEpoch?: number;
}

async function runCase(c: Case, seed: number): Promise<void> {
  const { gpu, kernels } = await testGpu();
  const scope = gpu.scope("topk test");
  try {
    const k = kernels.withGpu(scope);
    const raw = c.levels
      ? Float32Array.from(integers(c.n, c.levels, seed), (v) => (v - c.levels! / 3) / 4)
      : uniformF32(c.n, seed, -2, 2);
    const filter = Float32Array.from(integers(c.n, 2, seed + 1));
    const prior = Float32Array.from(integers(c.n, 2, seed + 2));
    const inSegment = (i: number) => c.segments.some(([s, e]) => i >= s && i < e);
    const candidate = (i: number) =>
      inSegment(i) &&
      (c.candidates === "all" || (c.candidates === "live" ? filter[i] === 1 : filter[i] === 0));
    const step = c.step ?? 0;
    const scores = c.score === "random"
      ? Float64Array.from({ length: c.n }, (_, i) => randomScoreRef(11, 3, step, i))
      : c.score === "abs"
      ? Float64Array.from(raw, Math.abs)
      : Float64Array.from(raw);
    const counters = createCounters(scope);
    scope.write(counters, new Uint32Array([step]));
    const values = scope.storage("values", raw);
    const filterBuffer = scope.storage("filter", filter);
    const segments = segmentTable(
      scope,
      c.segments.map(([start, end]) => ({ start, end, lrMult: 1, weightDecay: 0 })),
    );
    const table = c.stepsPerEpoch ? [7, 3, ...c.ks] : c.ks;
    for (const [j, want] of c.ks.entries()) {
      const out = c.or ? scope.storage("out", prior) : poisoned(scope, "out", c.n);
      const counts = c.stepsPerEpoch ? table : [want];
      if (c.stepsPerEpoch) {
        scope.write(counters, new Uint32Array([(2 + j) * c.stepsPerEpoch + 1]));
      }
      const dispatches = await topkMask(k, {
        n: c.n,
        segments,
        segmentCount: c.segments.length,
        counters,
        score: c.score,
        values,
        candidates: c.candidates,
        filter: filterBuffer,
        out,
        or: c.or,
        counts,
        stepsPerEpoch: c.stepsPerEpoch,
        seed: 11,
        stream: 3,
      });
      submitDispatches(scope, dispatches, "topk");
      const got = await scope.readF32(out, c.n);
      const chosen = topkMaskRef(scores, candidate, want);
      const expected = c.or ? chosen.map((v, i) => Math.max(v, prior[i]!)) : chosen;
      const count = [...got].filter((v) => v === 1).length;
      const label = `${
        JSON.stringify({ ...c, ks: undefined, segments: c.segments.length })
      } k=${want}`;
      let candidates = 0;
      for (let i = 0; i < c.n; i++) if (candidate(i)) candidates++;
      if (!c.or) assert.strictEqual(count, Math.min(want, candidates), `${label}: ones`);
      for (let i = 0; i < c.n; i++) {
        if (got[i] !== expected[i]) {
          assert.fail(
            `${label}: mask[${i}] is ${got[i]}, reference ${expected[i]} (score ${
              scores[i]
            }, candidate ${candidate(i)})`,
          );
        }
      }
    }
  } finally {
    scope.dispose();
  }
}

Deno.test("topk mask: exactly k of the largest scores, ties to the lower index, padding never chosen", async () => {
  const segs: [number, number][] = [[0, 3000], [3072, 3072], [3100, 9000], [9216, 10001]];
  const p = 3000 + 5900 + 785;
  await runCase(
    {
      n: 10001,
      segments: segs,
      score: "value",
      candidates: "all",
      ks: [0, 1, 2500, p - 1, p, p + 5],
      levels: 9,
    },
    1,
  );
  await runCase({ n: 10001, segments: segs, score: "value", candidates: "all", ks: [1234] }, 2);
});

Deno.test("topk mask: |values| among live elements, and random scores among dead ones added to a mask", async () => {
  const segs: [number, number][] = [[5, 4000], [4100, 7000]];
  await runCase(
    {
      n: 7003,
      segments: segs,
      score: "abs",
      candidates: "live",
      ks: [0, 17, 1500, 9000],
      levels: 5,
    },
    3,
  );
  await runCase(
    {
      n: 7003,
      segments: segs,
      score: "random",
      candidates: "dead",
      ks: [300, 3000],
      or: true,
      step: 4,
    },
    4,
  );
});

Deno.test("topk mask: k from a per-epoch table at the step's epoch", async () => {
  await runCase(
    {
      n: 5000,
      segments: [[0, 5000]],
      score: "value",
      candidates: "all",
      ks: [10, 2000, 4999],
      levels: 40,
      stepsPerEpoch: 6,
    },
    5,
  );
});

Deno.test("topk mask: more than 256 chunks (the tie scan's second block), ties at the threshold", async () => {
  const n = 257 * 4096 + 5;
  await runCase(
    {
      n,
      segments: [[0, n - 100], [n - 90, n]],
      score: "value",
      candidates: "all",
      ks: [600_000],
      levels: 3,
    },
    6,
  );
});
