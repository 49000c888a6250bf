import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { normalAdd, normalFill, type RandomFillArgs, uniformFill } from "../core/ops/normal.ts";
import { segmentTable } from "../core/ops/optimizer.ts";
import {
  type FillKey,
  type NoiseSegment,
  normalAddRef,
  normalFillRef,
  uniformFillRef,
} from "./reference/normal.ts";
import { uniformF32 } from "./helpers/random.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";

const SIZES = [1, 7, 257, 70_001];
const SEED = 0x0badc0de;
const STREAM = 12;
const BIG = 1 << 20;

type Fill =
  | { kind: "normal"; mean: number; std: number }
  | { kind: "uniform"; low: number; high: number };

/** Fills a poisoned buffer of n values on the GPU and reads it back. */
async function run(
  n: number,
  fill: Fill,
  stream: Omit<RandomFillArgs, "out" | "n" | "counters"> & { counters?: Uint32Array },
): Promise<Float32Array> {
  const { gpu, kernels } = await testGpu();
  const out = poisoned(gpu, `${fill.kind}_fill out`, n);
  const counters = stream.counters ? gpu.storage("fill counters", stream.counters) : undefined;
  const args = { ...stream, out, n, counters };
  const d = fill.kind === "normal"
    ? await normalFill(kernels, { ...args, mean: fill.mean, std: fill.std })
    : await uniformFill(kernels, { ...args, low: fill.low, high: fill.high });
  submitDispatches(gpu, [d]);
  const values = await gpu.readF32(out, n);
  out.destroy();
  counters?.destroy();
  return values;
}

function reference(n: number, fill: Fill, key: FillKey): Float64Array {
  return fill.kind === "normal"
    ? normalFillRef(n, key, fill.mean, fill.std)
    : uniformFillRef(n, key, fill.low, fill.high);
}

/** Φ(x) through erf by Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7, far below the KS bound). */
function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 +
            t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-z * z);
  return 0.5 * (1 + (x >= 0 ? erf : -erf));
}

/** The Kolmogorov–Smirnov statistic sup |F_n − F| of a sample against the CDF F. */
function ksStatistic(values: Float32Array, cdf: (x: number) => number): number {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = cdf(sorted[i]!);
    d = Math.max(d, Math.abs((i + 1) / n - f), Math.abs(f - i / n));
  }
  return d;
}

/** Sample mean and variance. */
function moments(values: Float32Array): { mean: number; variance: number } {
  let mean = 0;
  for (const v of values) mean += v;
  mean /= values.length;
  let variance = 0;
  for (const v of values) variance += (v - mean) ** 2;
  return { mean, variance: variance / values.length };
}

// KS critical value at significance 0.001: 1.95/√n.
const KS_BOUND = 1.95 / Math.sqrt(BIG);

const NORMAL: Fill = { kind: "normal", mean: 0.25, std: 0.7 };
const UNIFORM: Fill = { kind: "uniform", low: -0.3, high: 0.9 };

for (const fill of [NORMAL, UNIFORM]) {
  const name = `${fill.kind}_fill`;

  Deno.test(`${name}: values vs float64 reference of the same transform`, async () => {
    // Step from the counters buffer (index 1), and from a fixed step.
    const counters = new Uint32Array([3, 98_765, 4]);
    for (const n of SIZES) {
      const key = { seed: SEED, stream: STREAM, step: counters[1]! };
      const expected = reference(n, fill, key);
      const viaCounters = await run(n, fill, {
        seed: SEED,
        stream: STREAM,
        counters,
        counterIndex: 1,
      });
      // normal: f32 log, sqrt, cos and sin on r ≤ 5.9, times std 0.7: llvmpipe is within 6e-7;
      // atol 5e-6 leaves room for GPUs' approximate sin/cos (~2^−21 absolute, times r·std ≈ 4).
      const tolerance = fill.kind === "normal" ? { atol: 5e-6, rtol: 1e-5 } : {
        atol: 1e-7,
        rtol: 1e-6,
      };
      assertClose(viaCounters, expected, { ...tolerance, label: `${name} counters n=${n}` });
      const viaStep = await run(n, fill, { ...key });
      assert.deepStrictEqual(viaStep, viaCounters, `${name} n=${n}: step and counters differ`);
    }
  });

  Deno.test(`${name}: same key gives the same values, another step or stream others`, async () => {
    const n = 1001;
    const key = { seed: SEED, stream: STREAM, step: 5 };
    const first = await run(n, fill, key);
    assert.deepStrictEqual(await run(n, fill, key), first, `${name}: second run differs`);
    for (
      const other of [{ ...key, step: 6 }, { ...key, stream: STREAM + 1 }, { ...key, seed: 1 }]
    ) {
      const values = await run(n, fill, other);
      const same = values.filter((v, i) => v === first[i]).length;
      assert.ok(same < n / 100, `${name} ${JSON.stringify(other)}: ${same} of ${n} values equal`);
    }
  });
}

Deno.test("normal_fill: mean, variance, ±1σ fraction and KS within bounds for n = 2^20", async () => {
  const mean = -0.5;
  const std = 2;
  const values = await run(BIG, { kind: "normal", mean, std }, {
    seed: SEED,
    stream: STREAM,
    step: 17,
  });
  const m = moments(values);
  const label = `normal_fill n=${BIG}`;
  // Standard errors: σ/√n for the mean, σ²·√(2/n) for the variance of a normal sample.
  const meanBound = 5 * std / Math.sqrt(BIG);
  assert.ok(Math.abs(m.mean - mean) < meanBound, `${label}: mean ${m.mean} beyond ±${meanBound}`);
  const varBound = 5 * std * std * Math.sqrt(2 / BIG);
  assert.ok(
    Math.abs(m.variance - std * std) < varBound,
    `${label}: variance ${m.variance} beyond ${std * std} ± ${varBound}`,
  );
  const inside = values.filter((v) => Math.abs(v - mean) <= std).length / BIG;
  const p = 0.6826894921370859;
  const fracBound = 5 * Math.sqrt(p * (1 - p) / BIG);
  assert.ok(Math.abs(inside - p) < fracBound, `${label}: ±1σ fraction ${inside} vs ${p}`);
  const ks = ksStatistic(values, (x) => normalCdf((x - mean) / std));
  assert.ok(ks < KS_BOUND, `${label}: KS statistic ${ks} ≥ ${KS_BOUND}`);
});

Deno.test("uniform_fill: mean, variance and KS within bounds for n = 2^20", async () => {
  const low = -1 / Math.sqrt(130);
  const high = 1 / Math.sqrt(130);
  const values = await run(BIG, { kind: "uniform", low, high }, {
    seed: SEED,
    stream: STREAM,
    step: 0,
  });
  const m = moments(values);
  const label = `uniform_fill n=${BIG}`;
  const width = high - low;
  const variance = width * width / 12;
  // Standard errors: √(var/n) for the mean; √((μ4 − σ⁴)/n) = σ²·√(0.8/n) for the variance
  // (μ4 = 9σ⁴/5 for a uniform distribution).
  const meanBound = 5 * Math.sqrt(variance / BIG);
  assert.ok(Math.abs(m.mean - (low + high) / 2) < meanBound, `${label}: mean ${m.mean}`);
  const varBound = 5 * variance * Math.sqrt(0.8 / BIG);
  assert.ok(
    Math.abs(m.variance - variance) < varBound,
    `${label}: variance ${m.variance} beyond ${variance} ± ${varBound}`,
  );
  assert.ok(values.every((v) => v >= low && v <= high), `${label}: a value outside [low, high]`);
  const ks = ksStatistic(values, (x) => Math.min(1, Math.max(0, (x - low) / width)));
  assert.ok(ks < KS_BOUND, `${label}: KS statistic ${ks} ≥ ${KS_BOUND}`);
});

/** normal_add on `before` over `segments`, the step read from counters[1]; returns the result. */
async function runAdd(
  before: Float32Array,
  segments: NoiseSegment[],
  scale: Float32Array,
  step: number,
  factor = 1,
): Promise<Float32Array> {
  const { gpu, kernels } = await testGpu();
  const out = gpu.storage("normal_add out", before);
  const counters = gpu.storage("normal_add counters", new Uint32Array([7, step, 9]));
  const scaleBuffer = gpu.storage("normal_add scale", scale);
  const table = segmentTable(gpu, segments.map((s) => ({ ...s, weightDecay: 0 })));
  const d = await normalAdd(kernels, {
    out,
    n: before.length,
    seed: SEED,
    stream: STREAM,
    counters,
    counterIndex: 1,
    scale: scaleBuffer,
    segments: table,
    segmentCount: segments.length,
    factor,
  });
  submitDispatches(gpu, [d]);
  const values = await gpu.readF32(out, before.length);
  for (const b of [out, counters, scaleBuffer, table]) b.destroy();
  return values;
}

Deno.test("normal_add: adds the step's std × the segment's multiplier × z to segments only", async () => {
  const n = 1000;
  const before = uniformF32(n, 3, -1, 1);
  // Segments not on block boundaries, with a gap and a tail outside every segment.
  const segments = [
    { start: 0, end: 130, lrMult: 1 },
    { start: 192, end: 515, lrMult: 0.5 },
    { start: 517, end: 901, lrMult: 2 },
  ];
  const scale = Float32Array.from([0.3, 0.02, 0.05]);
  for (const [step, std] of [[0, 0.3], [1, 0.02], [2, 0.05], [40, 0.05]] as const) {
    const got = await runAdd(before, segments, scale, step, 1.5);
    const expected = normalAddRef(
      before,
      { seed: SEED, stream: STREAM, step },
      1.5 * std,
      segments,
    );
    // As normal_fill's deviates (atol 5e-6 at std 0.7), scaled by std·lrMult ≤ 0.9.
    assertClose(got, expected, { atol: 5e-6, rtol: 1e-5, label: `normal_add step ${step}` });
    for (let i = 0; i < n; i++) {
      if (!segments.some((s) => i >= s.start && i < s.end)) {
        assert.strictEqual(got[i], before[i], `normal_add step ${step}: element ${i} changed`);
      }
    }
  }
  // The check can fail: the noise is there.
  const moved = await runAdd(before, segments, scale, 0);
  assert.ok(moved.filter((v, i) => v !== before[i]).length > 700, "normal_add added nothing");
});

Deno.test("normal bindings reject bad std, bounds, steps and counter indices", async () => {
  const { gpu, kernels } = await testGpu();
  const out = gpu.storage("fill validation", 16);
  const base = { out, n: 4, seed: 1, stream: 2 };
  await assert.rejects(() => normalFill(kernels, { ...base, std: -1 }), /std must be ≥ 0/);
  await assert.rejects(() => uniformFill(kernels, { ...base, low: 1, high: 0 }), /high 0/);
  await assert.rejects(() => normalFill(kernels, { ...base, std: 1, step: -3 }), /step/);
  await assert.rejects(
    () => normalFill(kernels, { ...base, std: 1, counters: out, step: 2 }),
    /either counters or step/,
  );
  await assert.rejects(
    () => normalFill(kernels, { ...base, std: 1, counters: out, counterIndex: 4 }),
    /counterIndex 4/,
  );
  out.destroy();
});
