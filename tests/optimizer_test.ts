import assert from "node:assert";
import { type Dispatch, encode } from "../core/gpu/kernels.ts";
import {
  advanceStep,
  lamb,
  type OptimizerBuffers,
  segmentTable,
  sgd,
} from "../core/ops/optimizer.ts";
import type { Config, OptimizerPlugin } from "../core/train/registry.ts";
import { adamPlugin, adamwPlugin, lionPlugin } from "../plugins/optimizers/optimizers.ts";
import {
  adamRef,
  lambRef,
  type LambTrace,
  lionRef,
  type RefSegment,
  type RefStep,
  sgdRef,
} from "./reference/optimizer.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { uniformF32 } from "./helpers/random.ts";
import { runTorch } from "./helpers/torch.ts";

// n = 7 puts one element in some segments, 257 crosses one 256-wide workgroup, 4099 spans 17.
const SIZES = [7, 257, 4099];
const STEPS = 4;

// Tolerances: the kernels compute each update in f32 from the same f32 inputs as the float64
// reference, so every step adds a few f32 roundings (~6e-8 relative) of values of order 1;
// after 4 steps the parameters (|θ| ≤ ~1) agree within atol 1e-6 + rtol 1e-5. State slots are of
// order |g| (m) and g² (v, down to ~1e-10 for small g), hence the smaller atol.
const PARAM_TOL = { atol: 1e-6, rtol: 1e-5 };
const STATE_TOL = { m: { atol: 1e-7, rtol: 1e-5 }, v: { atol: 1e-9, rtol: 1e-5 } };

type ClipMode = "off" | "active" | "inactive";

/** Inputs of one multi-step run; all values already rounded to f32 as the GPU sees them. */
interface Setup {
  n: number;
  segments: RefSegment[];
  params: Float32Array;
  /** Unscaled gradients of every step. */
  grads: Float32Array[];
  /** Σg² of each step's gradients, rounded to f32 (what the reduction kernel would write). */
  sumSq: number[];
  lrTable: Float32Array;
  maxNorm: number;
  gradScale: number;
}

/**
 * Five segments with different lr multipliers and weight decays (one with λ = 0, one empty),
 * and, with `gap`, elements that no segment covers.
 */
function makeSegments(n: number, gap: boolean): RefSegment[] {
  const c1 = Math.floor(0.4 * n);
  const c2 = Math.max(c1 + 1, Math.floor(0.55 * n));
  const c3 = Math.max(c2 + 1, Math.floor(0.9 * n));
  const hole = gap ? Math.max(1, Math.floor(0.1 * n)) : 0;
  const f = Math.fround;
  return [
    { start: 0, end: c1, lrMult: 1, weightDecay: f(0.1) },
    { start: c1, end: c1, lrMult: 3, weightDecay: f(0.2) },
    { start: c1, end: c2, lrMult: f(0.5), weightDecay: 0 },
    { start: c2, end: c3 - hole, lrMult: 2, weightDecay: f(0.02) },
    { start: c3, end: n, lrMult: f(1.5), weightDecay: f(0.3) },
  ];
}

function makeSetup(
  n: number,
  seed: number,
  opts: { clip: ClipMode; gradScale: number; gap?: boolean; lrs?: number[]; steps?: number },
): Setup {
  const steps = opts.steps ?? STEPS;
  const grads = Array.from({ length: steps }, (_, s) => uniformF32(n, seed * 31 + s, -1, 1));
  const sumSq = grads.map((g) => Math.fround(g.reduce((a, x) => a + x * x, 0)));
  const norms = sumSq.map((q) => Math.sqrt(q) * Math.abs(opts.gradScale));
  const maxNorm = opts.clip === "off"
    ? 0
    : Math.fround(opts.clip === "active" ? 0.5 * Math.min(...norms) : 2 * Math.max(...norms));
  return {
    n,
    segments: makeSegments(n, opts.gap ?? true),
    params: uniformF32(n, seed * 17 + 3, -1, 1),
    grads,
    sumSq,
    lrTable: Float32Array.from(opts.lrs ?? [0.05, 0.02, 0.08, 0.03, 0.01]),
    maxNorm,
    gradScale: Math.fround(opts.gradScale),
  };
}

/** Σg² after the test edited the gradients. */
function refreshSumSq(setup: Setup): void {
  setup.sumSq = setup.grads.map((g) => Math.fround(g.reduce((a, x) => a + x * x, 0)));
}

/** The float64 step inputs of step s (0-based), with the lr index clamped as the kernel does. */
function refStep(setup: Setup, s: number): RefStep {
  return {
    grads: setup.grads[s]!,
    sumSq: setup.sumSq[s]!,
    lr: setup.lrTable[Math.min(s, setup.lrTable.length - 1)]!,
    t: s + 1,
    maxNorm: setup.maxNorm,
    gradScale: setup.gradScale,
  };
}

/**
 * The step of an optimizer plugin (written with defineOptimizer, `wgsl/optimizer_template.wgsl`)
 * over the test's buffers: `slots` are the test's names of the plugin's state slots, in order.
 */
function pluginStep(plugin: OptimizerPlugin, config: Config, setup: Setup, slots: string[]) {
  return async (b: OptimizerBuffers, state: Record<string, GPUBuffer>): Promise<Dispatch[]> => {
    const { kernels } = await testGpu();
    return await plugin.create({
      kernels,
      params: b.params,
      grads: b.grads,
      state: slots.map((s) => state[s]!),
      segments: b.segments,
      segmentCount: b.segmentCount,
      n: b.n,
      counters: b.counters,
      lrTable: b.lrTable,
      lrs: setup.lrTable,
      tensors: setup.segments.map((seg, k) => ({
        name: `t${k}`,
        shape: [seg.end - seg.start],
        ...seg,
      })),
      seed: 0,
      gradNorm: b.gradNorm!,
      gradScale: b.gradScale ?? 1,
      maxGradNorm: b.maxNorm ?? 0,
    }, { ...plugin.defaults, ...config });
  };
}

type StateInit = "zero" | "nan";

/**
 * Runs `setup` for every step on the GPU (gradients and Σg² copied in on the GPU from per-step
 * stores, counter advanced by `advance_step`) and compares parameters and state slots with the
 * float64 reference after each step; with `oneSubmission` all steps go in one command buffer and
 * only the end is compared. Returns nothing; throws on mismatch.
 */
async function checkSteps(args: {
  label: string;
  setup: Setup;
  slots: Record<string, StateInit>;
  build: (b: OptimizerBuffers, state: Record<string, GPUBuffer>) => Promise<Dispatch[]>;
  reference: (state: Record<string, Float64Array>, step: RefStep) => unknown;
  afterStep?: (s: number, refResult: unknown) => Promise<void>;
  oneSubmission?: boolean;
}): Promise<void> {
  const { gpu, kernels } = await testGpu();
  const { setup, label } = args;
  const { n } = setup;
  const steps = setup.grads.length;
  const owned: GPUBuffer[] = [];
  const keep = <T extends GPUBuffer>(b: T) => (owned.push(b), b);
  const gradsAll = new Float32Array(steps * n);
  setup.grads.forEach((g, s) => gradsAll.set(g, s * n));
  const gradsStore = keep(gpu.storage("opt test grads store", gradsAll));
  const sumSqStore = keep(gpu.storage("opt test sumsq store", Float32Array.from(setup.sumSq)));
  const buffers: OptimizerBuffers = {
    params: keep(gpu.storage("opt test params", setup.params)),
    grads: keep(poisoned(gpu, "opt test grads", n)),
    segments: keep(segmentTable(gpu, setup.segments)),
    segmentCount: setup.segments.length,
    counters: keep(gpu.storage("opt test counters", new Uint32Array([0, 0, 0, 0]))),
    lrTable: keep(gpu.storage("opt test lr table", setup.lrTable)),
    gradNorm: keep(poisoned(gpu, "opt test grad norm", 1)),
    n,
    maxNorm: setup.maxNorm,
    gradScale: setup.gradScale,
  };
  const state: Record<string, GPUBuffer> = {};
  const ref: Record<string, Float64Array> = { params: Float64Array.from(setup.params) };
  for (const [name, init] of Object.entries(args.slots)) {
    // Covered elements start as the optimizer's initial state (NaN where it must not be read);
    // uncovered ones hold a finite marker that must survive every step.
    const initial = new Float32Array(n).fill(0.25);
    for (const seg of setup.segments) {
      initial.fill(init === "nan" ? Number.NaN : 0, seg.start, seg.end);
    }
    state[name] = keep(gpu.storage(`opt test ${name}`, initial));
    ref[name] = Float64Array.from(initial);
  }
  const dispatches = [
    ...(await args.build(buffers, state)),
    await advanceStep(kernels, { counters: buffers.counters }),
  ];
  const encodeStep = (encoder: GPUCommandEncoder, s: number) => {
    encoder.copyBufferToBuffer(gradsStore, 4 * s * n, buffers.grads, 0, 4 * n);
    encoder.copyBufferToBuffer(sumSqStore, 4 * s, buffers.gradNorm!, 0, 4);
    const pass = encoder.beginComputePass({ label });
    encode(pass, dispatches);
    pass.end();
  };
  const compare = async (s: number) => {
    const where = `${label} n=${n} step ${s + 1}`;
    assertClose(await gpu.readF32(buffers.params, n), ref.params!, {
      ...PARAM_TOL,
      label: `${where} params`,
    });
    for (const name of Object.keys(args.slots)) {
      const tol = STATE_TOL[name as keyof typeof STATE_TOL] ?? STATE_TOL.m;
      assertClose(await gpu.readF32(state[name]!, n), ref[name]!, {
        ...tol,
        label: `${where} ${name}`,
      });
    }
  };
  try {
    let encoder = gpu.device.createCommandEncoder({ label });
    for (let s = 0; s < steps; s++) {
      const result = args.reference(ref, refStep(setup, s));
      encodeStep(encoder, s);
      if (args.oneSubmission && s < steps - 1) continue;
      gpu.submit([encoder.finish()]);
      encoder = gpu.device.createCommandEncoder({ label });
      await compare(s);
      await args.afterStep?.(s, result);
    }
    const counters = await gpu.readU32(buffers.counters, 1);
    assert.strictEqual(counters[0], steps, `${label} n=${n}: counters[0] after ${steps} steps`);
  } finally {
    for (const b of owned) b.destroy();
  }
}

const SGD_CASES = [
  { name: "plain (momentum 0), no clipping", momentum: 0, dampening: 0, nesterov: false },
  { name: "momentum 0.9, dampening 0.1", momentum: 0.9, dampening: 0.1, nesterov: false },
  { name: "nesterov momentum 0.8", momentum: 0.8, dampening: 0, nesterov: true },
];
const CLIPS: ClipMode[] = ["off", "active", "inactive"];

for (const [k, c] of SGD_CASES.entries()) {
  Deno.test(`optimizer sgd ${c.name}: 4 steps against float64`, async () => {
    const { kernels } = await testGpu();
    for (const n of SIZES) {
      const setup = makeSetup(n, 100 + k * 7 + n, {
        clip: CLIPS[k]!,
        gradScale: k === 1 ? 0.25 : 1,
      });
      const hp = { momentum: c.momentum, dampening: c.dampening, nesterov: c.nesterov };
      // The momentum buffer starts as NaN: torch's first step sets it to g without reading it.
      await checkSteps({
        label: `sgd ${c.name} clip ${CLIPS[k]}`,
        setup,
        slots: c.momentum === 0 ? {} : { m: "nan" },
        build: (b, st) => sgd(kernels, { ...b, ...hp, m: st.m }),
        reference: (r, step) =>
          sgdRef({ params: r.params!, m: r.m ?? new Float64Array(n) }, setup.segments, step, hp),
      });
    }
  });
}

for (const decoupled of [false, true]) {
  const name = decoupled ? "adamw" : "adam";
  Deno.test(`optimizer ${name}: 4 steps against float64, clipping ${decoupled ? "inactive" : "active"}`, async () => {
    const hp = { beta1: 0.9, beta2: 0.999, eps: 1e-8, decoupled };
    for (const n of SIZES) {
      const setup = makeSetup(n, 200 + n + Number(decoupled), {
        clip: decoupled ? "inactive" : "active",
        gradScale: decoupled ? 0.5 : 1,
      });
      await checkSteps({
        label: `${name} plugin`,
        setup,
        slots: { m: "zero", v: "zero" },
        build: pluginStep(decoupled ? adamwPlugin : adamPlugin, hp, setup, ["m", "v"]),
        reference: (r, step) =>
          adamRef({ params: r.params!, m: r.m!, v: r.v! }, setup.segments, step, hp),
      });
    }
  });
}

Deno.test("optimizer adamw: 5 steps encoded in one submission, lr table shorter than the run", async () => {
  const hp = { beta1: 0.8, beta2: 0.95, eps: 1e-6, decoupled: true };
  for (const n of SIZES) {
    // 3 lr entries for 5 steps: steps 4 and 5 reuse the last entry (the kernel clamps the index).
    const setup = makeSetup(n, 300 + n, {
      clip: "active",
      gradScale: 0.5,
      lrs: [0.03, 0.06, 0.01],
      steps: 5,
    });
    await checkSteps({
      label: "adamw one submission",
      setup,
      slots: { m: "zero", v: "zero" },
      build: pluginStep(adamwPlugin, hp, setup, ["m", "v"]),
      reference: (r, step) =>
        adamRef({ params: r.params!, m: r.m!, v: r.v! }, setup.segments, step, hp),
      oneSubmission: true,
    });
  }
});

Deno.test("optimizer lion: sign update with decoupled decay, sign(0) = 0, 4 steps", async () => {
  const hp = { beta1: 0.9, beta2: 0.99 };
  for (const n of SIZES) {
    const setup = makeSetup(n, 400 + n, { clip: "active", gradScale: 0.5 });
    // Zero gradients at every 5th element keep m = 0 there, so sign's argument is exactly 0.
    for (const g of setup.grads) for (let i = 0; i < n; i += 5) g[i] = 0;
    refreshSumSq(setup);
    await checkSteps({
      label: "lion",
      setup,
      slots: { m: "zero" },
      build: pluginStep(lionPlugin, hp, setup, ["m"]),
      reference: (r, step) => lionRef({ params: r.params!, m: r.m! }, setup.segments, step, hp),
      afterStep: (s, margin) => {
        // The inputs are fixed, so this checks the test data: no sign argument is so close to 0
        // that f32 rounding could flip it (which would make the comparison meaningless).
        assert.ok((margin as number) > 1e-4, `lion n=${n} step ${s + 1}: sign margin ${margin}`);
        return Promise.resolve();
      },
    });
  }
});

const LAMB_CASES = [
  { name: "timm defaults, zero-norm segment", alwaysAdapt: false, trustClip: false },
  { name: "always_adapt + trust_clip, zero-update segment", alwaysAdapt: true, trustClip: true },
];

for (const [k, c] of LAMB_CASES.entries()) {
  Deno.test(`optimizer lamb ${c.name}: moments, segment norms, apply, 4 steps`, async () => {
    const { gpu, kernels } = await testGpu();
    const hp = {
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-6,
      alwaysAdapt: c.alwaysAdapt,
      trustClip: c.trustClip,
    };
    for (const n of SIZES) {
      const setup = makeSetup(n, 500 + 11 * k + n, {
        clip: k === 0 ? "active" : "off",
        gradScale: 0.75,
      });
      const [first, , wdZero] = setup.segments;
      // Segment 0 (λ = 0.1) starts at θ = 0: ‖θ‖ = 0 at step 1, so trust must be 1 there.
      setup.params.fill(0, first!.start, first!.end);
      // With always_adapt, the λ = 0 segment gets zero gradients: r = 0, ‖r‖ = 0, trust 1, no NaN.
      // A second λ = 0 segment with nonzero gradients shows that always_adapt scales it.
      if (c.alwaysAdapt) {
        for (const g of setup.grads) g.fill(0, wdZero!.start, wdZero!.end);
        setup.segments[3]!.weightDecay = 0;
      }
      refreshSumSq(setup);
      const update = poisoned(gpu, "lamb update", n);
      const segNorms = poisoned(gpu, "lamb seg norms", 2 * setup.segments.length);
      try {
        await checkSteps({
          label: `lamb ${c.name}`,
          setup,
          slots: { m: "zero", v: "zero" },
          build: (b, st) => lamb(kernels, { ...b, ...hp, m: st.m!, v: st.v!, update, segNorms }),
          reference: (r, step) =>
            lambRef({ params: r.params!, m: r.m!, v: r.v! }, setup.segments, step, hp),
          afterStep: async (s, trace) => {
            const { update: r, norms, trust } = trace as LambTrace;
            const where = `lamb ${c.name} n=${n} step ${s + 1}`;
            assertClose(await gpu.readF32(update, n), r, {
              ...PARAM_TOL,
              label: `${where} lamb_moments update`,
            });
            // f32 sums of up to ~1600 squares: a few roundings per level of the tree.
            assertClose(await gpu.readF32(segNorms, norms.length), norms, {
              atol: 1e-6,
              rtol: 1e-5,
              label: `${where} segment_sumsq`,
            });
            if (s === 0 && first!.end > first!.start) {
              assert.strictEqual(trust[0], 1, `${where}: trust of θ = 0`);
            }
          },
        });
      } finally {
        update.destroy();
        segNorms.destroy();
      }
    }
  });
}

Deno.test("optimizer bindings reject invalid segments and options, naming the value", async () => {
  const { gpu, kernels } = await testGpu();
  assert.throws(
    () =>
      segmentTable(gpu, [{ start: 0, end: 5, lrMult: 1, weightDecay: 0 }, {
        start: 4,
        end: 6,
        lrMult: 1,
        weightDecay: 0,
      }]),
    /segment 1 \[4, 6\).*previous end 5/,
  );
  assert.throws(() => segmentTable(gpu, []), /no segments/);
  const b = gpu.storage("opt invalid", 64);
  const base = { params: b, grads: b, segments: b, segmentCount: 1, counters: b, lrTable: b, n: 4 };
  await assert.rejects(
    sgd(kernels, { ...base, m: b, momentum: 0, nesterov: true }),
    /nesterov needs momentum > 0/,
  );
  await assert.rejects(
    sgd(kernels, { ...base, momentum: 0.9 }),
    /momentum 0.9 needs the momentum buffer/,
  );
  await assert.rejects(sgd(kernels, { ...base, maxNorm: 1 }), /maxNorm 1 > 0 needs the gradNorm/);
  await assert.rejects(
    lamb(kernels, { ...base, m: b, v: b, update: b, segNorms: b, beta2: 1 }),
    /beta2 1 is outside/,
  );
  await assert.rejects(sgd(kernels, { ...base, n: 100 }), /params.*has 64 bytes, needs 400/);
  b.destroy();
});

// torch.optim in float64: one parameter group per non-empty segment (lr = lr·lrMult, its weight
// decay), gradients scaled then clipped with clip_grad_norm_, state read back after every step.
const TORCH_SCRIPT = `
import json, sys, torch
torch.set_default_dtype(torch.float64)
out = []
for c in json.load(sys.stdin):
    segs = [s for s in c["segments"] if s["end"] > s["start"]]
    ps = [torch.nn.Parameter(torch.tensor(c["params"][s["start"]:s["end"]])) for s in segs]
    groups = [{"params": [p], "weight_decay": s["weightDecay"]} for p, s in zip(ps, segs)]
    h = c["hp"]
    if c["kind"] == "sgd":
        opt = torch.optim.SGD(groups, lr=1.0, momentum=h["momentum"], dampening=h["dampening"],
                              nesterov=h["nesterov"])
    else:
        cls = torch.optim.AdamW if h["decoupled"] else torch.optim.Adam
        opt = cls(groups, lr=1.0, betas=(h["beta1"], h["beta2"]), eps=h["eps"])
    steps = []
    for st in c["steps"]:
        for g, p, s in zip(opt.param_groups, ps, segs):
            g["lr"] = st["lr"] * s["lrMult"]
            p.grad = torch.tensor(st["grads"][s["start"]:s["end"]]) * c["gradScale"]
        if c["maxNorm"] > 0:
            torch.nn.utils.clip_grad_norm_(ps, c["maxNorm"])
        opt.step()
        res = {"params": torch.cat([p.detach() for p in ps]).tolist()}
        for slot in c["slots"]:
            res[slot] = torch.cat([opt.state[p][slot] for p in ps]).tolist()
        steps.append(res)
    out.append(steps)
print(json.dumps(out))
`;

type TorchCase = {
  kind: "sgd" | "adam";
  hp: Record<string, number | boolean>;
  /** torch state names mapped to the reference's slot names. */
  slots: Record<string, string>;
  setup: Setup;
  reference: (state: Record<string, Float64Array>, step: RefStep) => void;
};

/** Runs the cases through one python3 process and compares every step in float64. */
async function crossCheckTorch(family: string, cases: TorchCase[]): Promise<void> {
  const input = cases.map((c) => ({
    kind: c.kind,
    hp: c.hp,
    slots: Object.keys(c.slots),
    segments: c.setup.segments,
    params: Array.from(c.setup.params),
    gradScale: c.setup.gradScale,
    maxNorm: c.setup.maxNorm,
    steps: c.setup.grads.map((g, s) => ({ grads: Array.from(g), lr: c.setup.lrTable[s] })),
  }));
  const results = await runTorch(TORCH_SCRIPT, input, `torch ${family}`) as Record<
    string,
    number[]
  >[][];
  cases.forEach((c, k) => {
    const n = c.setup.n;
    const ref: Record<string, Float64Array> = { params: Float64Array.from(c.setup.params) };
    for (const slot of Object.values(c.slots)) ref[slot] = new Float64Array(n);
    c.setup.grads.forEach((g, s) => {
      // Exact Σg² here: torch computes the norm itself in float64.
      const step = { ...refStep(c.setup, s), sumSq: g.reduce((a, x) => a + x * x, 0) };
      c.reference(ref, step);
      const torchStep = results[k]![s]!;
      const label = `torch ${family} case ${k} ${JSON.stringify(c.hp)} step ${s + 1}`;
      // Both sides are float64; only the order of operations differs.
      const tol = { atol: 1e-12, rtol: 1e-10 };
      assertClose(torchStep.params!, ref.params!, { ...tol, label: `${label} params` });
      for (const [torchSlot, slot] of Object.entries(c.slots)) {
        assertClose(torchStep[torchSlot]!, ref[slot]!, { ...tol, label: `${label} ${torchSlot}` });
      }
    });
  });
}

Deno.test("optimizer sgd reference matches torch.optim.SGD (plain, momentum + dampening, nesterov)", async () => {
  const configs = [
    { momentum: 0, dampening: 0, nesterov: false, clip: "active" as const, gradScale: 0.5 },
    { momentum: 0.9, dampening: 0.1, nesterov: false, clip: "inactive" as const, gradScale: 1 },
    { momentum: 0.8, dampening: 0, nesterov: true, clip: "active" as const, gradScale: 0.25 },
  ];
  await crossCheckTorch(
    "sgd",
    configs.map(({ clip, gradScale, ...hp }, k): TorchCase => {
      const setup = makeSetup(257, 600 + k, { clip, gradScale, gap: false, steps: 3 });
      return {
        kind: "sgd",
        hp,
        slots: hp.momentum === 0 ? {} : { momentum_buffer: "m" },
        setup,
        reference: (r, step) =>
          sgdRef({ params: r.params!, m: r.m ?? new Float64Array(257) }, setup.segments, step, hp),
      };
    }),
  );
});

Deno.test("optimizer adam reference matches torch.optim.Adam and AdamW", async () => {
  await crossCheckTorch(
    "adam",
    [false, true].map((decoupled, k): TorchCase => {
      const hp = { beta1: 0.85, beta2: 0.99, eps: 1e-8, decoupled };
      const setup = makeSetup(257, 700 + k, {
        clip: "active",
        gradScale: 0.5,
        gap: false,
        steps: 3,
      });
      return {
        kind: "adam",
        hp,
        slots: { exp_avg: "m", exp_avg_sq: "v" },
        setup,
        reference: (r, step) =>
          adamRef({ params: r.params!, m: r.m!, v: r.v! }, setup.segments, step, hp),
      };
    }),
  );
});
