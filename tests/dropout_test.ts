import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { type DropoutArgs, dropoutBackward, dropoutForward } from "../core/ops/dropout.ts";
import {
  alphaDropoutBackwardRef,
  alphaDropoutForwardRef,
  dropoutBackwardRef,
  dropoutForwardRef,
  dropoutMaskRef,
} from "./reference/dropout.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { dot, numericGradient } from "./helpers/finite_difference.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { f64, normalF32, uniformF32 } from "./helpers/random.ts";

const SIZES = [1, 7, 257, 70_001];
const SEED = 0x5eed1234;
const STREAM = 3;
// counters[2] is the step used by most tests; the others are there to prove the index is used.
const COUNTERS = new Uint32Array([11, 4, 123_457, 9]);
const STEP_INDEX = 2;

/**
 * Values with 0.1 ≤ |x| ≤ 1.5, so a kept element can never be mistaken for a dropped one: y = 0 in
 * dropout, y = a·α' + b in alpha dropout, and |α'| = 1.758 lies outside the range.
 */
function nonZero(n: number, seed: number): Float32Array {
  const u = uniformF32(n, seed, -1.4, 1.4);
  return u.map((v) => v < 0 ? v - 0.1 : v + 0.1);
}

type Mode = { alpha: boolean; name: string };
const MODES: Mode[] = [{ alpha: false, name: "dropout" }, { alpha: true, name: "alpha_dropout" }];

/** Runs forward (or backward on `init`) once and reads the output. */
async function run(
  direction: "forward" | "backward",
  input: Float32Array,
  args: Omit<DropoutArgs, "counters" | "n"> & { accumulate?: boolean; init?: Float32Array },
  counters: Uint32Array = COUNTERS,
): Promise<Float32Array> {
  const { gpu, kernels } = await testGpu();
  const n = input.length;
  const inBuf = gpu.storage("dropout input", input);
  const outBuf = args.init ? gpu.storage("dropout output", args.init) : poisoned(gpu, "out", n);
  const ctr = gpu.storage("dropout counters", counters);
  const common = { ...args, n, counters: ctr };
  const d = direction === "forward"
    ? await dropoutForward(kernels, { ...common, x: inBuf, y: outBuf })
    : await dropoutBackward(kernels, { ...common, dy: inBuf, dx: outBuf });
  submitDispatches(gpu, [d]);
  const out = await gpu.readF32(outBuf, n);
  inBuf.destroy();
  outBuf.destroy();
  ctr.destroy();
  return out;
}

const key = (step = COUNTERS[STEP_INDEX]!) => ({ seed: SEED, stream: STREAM, step });
const gpuArgs = { seed: SEED, stream: STREAM, counterIndex: STEP_INDEX };

Deno.test("dropout reference: backward equals finite differences of the forward", () => {
  const n = 33;
  const keep = dropoutMaskRef(n, 0.3, key());
  const x = f64(nonZero(n, 1));
  const w = f64(uniformF32(n, 2));
  for (const mode of MODES) {
    const forward = mode.alpha ? alphaDropoutForwardRef : dropoutForwardRef;
    const backward = mode.alpha ? alphaDropoutBackwardRef : dropoutBackwardRef;
    const numeric = numericGradient((v) => dot(w, forward(v, keep, 0.3)), x);
    assertClose(backward(w, keep, 0.3), numeric, {
      atol: 1e-7,
      rtol: 1e-6,
      label: `${mode.name} reference backward vs finite differences n=${n}`,
    });
  }
});

for (const mode of MODES) {
  Deno.test(`${mode.name}_forward: mask bit-exact vs Philox reference, values vs float64`, async () => {
    for (const n of SIZES) {
      for (const p of [0.1, 0.5]) {
        const x = nonZero(n, n + 17);
        const y = await run("forward", x, { ...gpuArgs, p, alpha: mode.alpha });
        const keep = dropoutMaskRef(n, p, key());
        const forward = mode.alpha ? alphaDropoutForwardRef : dropoutForwardRef;
        const label = `${mode.name}_forward n=${n} p=${p}`;
        assertClose(y, forward(x, keep, p), { atol: 1e-6, rtol: 1e-6, label });
        // The dropped value is a constant that a kept element never equals for these x (see
        // nonZero), so the mask can be read off y in both modes.
        const dropped = mode.alpha ? alphaDropoutForwardRef([0], [0], p)[0]! : 0;
        const gpuKeep = Uint8Array.from(y, (v) => Math.fround(dropped) === v ? 0 : 1);
        assert.deepStrictEqual(gpuKeep, keep, `${label}: mask differs from the reference`);
      }
    }
  });

  Deno.test(`${mode.name}_backward: same mask as the forward, values and ACCUMULATE`, async () => {
    for (const n of SIZES) {
      const p = 0.3;
      const dy = nonZero(n, 3 * n + 1);
      const keep = dropoutMaskRef(n, p, key());
      const backward = mode.alpha ? alphaDropoutBackwardRef : dropoutBackwardRef;
      const dx = await run("backward", dy, { ...gpuArgs, p, alpha: mode.alpha });
      const label = `${mode.name}_backward n=${n} p=${p}`;
      assertClose(dx, backward(dy, keep, p), { atol: 1e-6, rtol: 1e-6, label });
      assert.deepStrictEqual(Uint8Array.from(dx, (v) => v === 0 ? 0 : 1), keep, `${label} mask`);
      const init = uniformF32(n, 5 * n + 2, -1, 1);
      const acc = await run("backward", dy, {
        ...gpuArgs,
        p,
        alpha: mode.alpha,
        accumulate: true,
        init,
      });
      assertClose(acc, backward(dy, keep, p, init), {
        atol: 1e-6,
        rtol: 1e-6,
        label: `${label} ACCUMULATE`,
      });
    }
  });

  Deno.test(`${mode.name}: p = 0 is the identity, forward and backward`, async () => {
    const n = 257;
    const x = uniformF32(n, 77, -3, 3);
    const y = await run("forward", x, { ...gpuArgs, p: 0, alpha: mode.alpha });
    assert.deepStrictEqual(y, x, `${mode.name}_forward p=0 is not the identity`);
    const dx = await run("backward", x, { ...gpuArgs, p: 0, alpha: mode.alpha });
    assert.deepStrictEqual(dx, x, `${mode.name}_backward p=0 is not the identity`);
  });
}

Deno.test("dropout_forward: same step gives the same mask, another step or counter another", async () => {
  const n = 4099;
  const x = nonZero(n, 9);
  const args = { ...gpuArgs, p: 0.5 };
  const first = await run("forward", x, args);
  assert.deepStrictEqual(await run("forward", x, args), first, "second run differs");
  const advanced = COUNTERS.slice();
  advanced[STEP_INDEX]! += 1;
  const next = await run("forward", x, args, advanced);
  assert.deepStrictEqual(
    Uint8Array.from(next, (v) => v === 0 ? 0 : 1),
    dropoutMaskRef(n, 0.5, key(COUNTERS[STEP_INDEX]! + 1)),
    "mask after the counter advanced differs from the reference",
  );
  const changed = next.filter((v, i) => (v === 0) !== (first[i] === 0)).length;
  // Independent masks with p = 0.5 differ in about half the elements.
  assert.ok(changed > n / 4, `a new step changed only ${changed} of ${n} mask bits`);
  const otherCounter = await run("forward", x, { ...args, counterIndex: 0 });
  assert.notDeepStrictEqual(otherCounter, first, "counterIndex is ignored");
  const otherStream = await run("forward", x, { ...args, stream: STREAM + 1 });
  assert.notDeepStrictEqual(otherStream, first, "stream is ignored");
});

Deno.test("dropout_forward: keep rate within 5 sigma of 1 − p for n = 2^20", async () => {
  const n = 1 << 20;
  const x = nonZero(n, 21);
  for (const p of [0.1, 0.5]) {
    const y = await run("forward", x, { ...gpuArgs, p });
    let kept = 0;
    for (let i = 0; i < n; i++) if (y[i] !== 0) kept++;
    const rate = kept / n;
    const bound = 5 * Math.sqrt(p * (1 - p) / n);
    assert.ok(
      Math.abs(rate - (1 - p)) < bound,
      `dropout n=${n} p=${p}: keep rate ${rate} is more than ${bound} from ${1 - p}`,
    );
  }
});

Deno.test("alpha_dropout_forward: keeps mean 0 and variance 1 of N(0, 1) inputs", async () => {
  const n = 1 << 20;
  const x = normalF32(n, 31);
  for (const p of [0.1, 0.5]) {
    const y = await run("forward", x, { ...gpuArgs, p, alpha: true });
    let mean = 0;
    for (const v of y) mean += v;
    mean /= n;
    let m2 = 0;
    let m4 = 0;
    for (const v of y) {
      const d = (v - mean) ** 2;
      m2 += d;
      m4 += d * d;
    }
    m2 /= n;
    m4 /= n;
    // Standard errors of the sample mean and variance: σ/√n and √((m4 − σ⁴)/n) (y is not Gaussian,
    // so its own fourth moment is used). The input sample's own deviation is inside these bounds.
    const meanBound = 5 * Math.sqrt(m2 / n);
    const varBound = 5 * Math.sqrt((m4 - m2 * m2) / n);
    const label = `alpha_dropout n=${n} p=${p}`;
    assert.ok(Math.abs(mean) < meanBound, `${label}: mean ${mean} beyond ±${meanBound}`);
    assert.ok(Math.abs(m2 - 1) < varBound, `${label}: variance ${m2} beyond 1 ± ${varBound}`);
  }
});

Deno.test("dropout bindings reject bad p, seeds and counter indices", async () => {
  const { gpu, kernels } = await testGpu();
  const b = gpu.storage("dropout validation", 64);
  const base = { x: b, y: b, n: 4, seed: 1, stream: 0, counters: b };
  await assert.rejects(() => dropoutForward(kernels, { ...base, p: 1 }), RangeError);
  await assert.rejects(() => dropoutForward(kernels, { ...base, p: -0.1 }), RangeError);
  await assert.rejects(() => dropoutForward(kernels, { ...base, p: 0.1, seed: -1 }), RangeError);
  await assert.rejects(
    () => dropoutBackward(kernels, { ...base, dy: b, dx: b, p: 0.1, counterIndex: 16 }),
    /counterIndex 16/,
  );
  b.destroy();
});
