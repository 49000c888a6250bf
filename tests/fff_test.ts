/**
 * The Fast Feedforward layer (wgsl/fff.wgsl, core/graph/rules_fff.ts; algorithms.md §8): the
 * hardening entropy and its gradient against float64 (the reference's gradient against finite
 * differences first), the node probabilities with region leak bit-exact in their flips against
 * the Philox reference, the mixture weights and their backward against finite differences of the
 * float64 mixture, the gate, the hard path against the float64 hard path at sizes that are not
 * workgroup multiples, the hard path equal to the soft mixture's argmax path (and to the soft
 * output once the decisions saturate), a whole fff model's gradients — soft mixture and entropy
 * term — against finite differences of the float64 graph, and `fff` training on a small task.
 *
 * Tolerances: kernels accumulate in f32 over ≤ 64 terms (relative error ~1e-6), exp/log in WGSL
 * are good to a few ulp: forward 1e-5 absolute + 1e-4 relative; whole-model gradients as in
 * tests/model_grad_test.ts (3e-5 + 2e-3·|fd|).
 */

import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import {
  fffEntropy,
  fffEntropyBackward,
  fffGate,
  fffGateBackward,
  fffHard,
  fffMixture,
  fffMixtureBackward,
  fffProbs,
  fffSizes,
} from "../core/ops/fff.ts";
import { Graph } from "../core/graph/graph.ts";
import * as nn from "../core/graph/nn.ts";
import { ParamLayout } from "../core/graph/params.ts";
import { seededRandom } from "../core/util/random.ts";
import { resolveConfig } from "../core/train/config.ts";
import { train } from "../core/train/trainer.ts";
import { builtinRegistry } from "../plugins/mod.ts";
import { builtinOps } from "../core/graph/rules.ts";
import { createCounters } from "../core/gpu/counters.ts";
import { ModelPlan } from "../core/train/plan.ts";
import { dispatchPhase, encodeSteps } from "../core/train/step.ts";
import {
  fffEntropyBackwardRef,
  fffEntropyRef,
  fffHardRef,
  fffLeafRef,
  fffMixtureRef,
  fffProbsRef,
  type FffRefShape,
  fffSoftRef,
  Z_CLAMP,
} from "./reference/fff.ts";
import { philoxUniform, philoxWord } from "./reference/philox.ts";
import { numericGradients } from "./reference/graph_interpreter.ts";
import { gpuGradients } from "./helpers/model_grads.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { dot, numericGradient } from "./helpers/finite_difference.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { f64, uniformF32 } from "./helpers/random.ts";

const FWD = { atol: 1e-5, rtol: 1e-4 };
const SEED = 0x1234abcd;
const STREAM = 9;
const COUNTERS = new Uint32Array([0, 0, 41, 0]);
const STEP_INDEX = 2;

Deno.test("fff entropy reference: its gradient equals finite differences, zero past the clamp", () => {
  const nodes = 7;
  const z = f64(uniformF32(3 * nodes, 1, -4, 4));
  z[5] = 20; // past the clamp: the repo's clamp of p stops the gradient
  const dh = f64(uniformF32(3, 2));
  const numeric = numericGradient((v) => dot(dh, fffEntropyRef(v, nodes)), z);
  const analytic = fffEntropyBackwardRef(z, nodes, dh);
  assertClose(analytic, numeric, { atol: 1e-8, rtol: 1e-6, label: "entropy ref vs fd" });
  assert.strictEqual(analytic[5], 0);
  // H is largest at p = ½ (ln 2) and symmetric: the leak (p → 1 − p) leaves it unchanged.
  assert.ok(Math.abs(fffEntropyRef([0], 1)[0]! - Math.LN2) < 1e-15);
  assert.ok(Math.abs(fffEntropyRef([1.3], 1)[0]! - fffEntropyRef([-1.3], 1)[0]!) < 1e-15);
});

Deno.test("fff_entropy and its backward match float64 (poisoned outputs, ACCUMULATE, past the clamp)", async () => {
  const { gpu, kernels } = await testGpu();
  for (const [rows, depth] of [[1, 1], [37, 3], [70, 5]] as const) {
    const { nodes } = fffSizes(depth);
    const z = uniformF32(rows * nodes, rows + depth, -6, 6);
    z[0] = 30;
    z[Math.min(3, z.length - 1)] = -Z_CLAMP - 1;
    const zBuf = gpu.storage("z", z);
    const h = poisoned(gpu, "entropy", rows);
    submitDispatches(gpu, [await fffEntropy(kernels, { rows, depth, z: zBuf, entropy: h })]);
    const label = `fff_entropy rows=${rows} depth=${depth}`;
    assertClose(await gpu.readF32(h, rows), fffEntropyRef(z, nodes), { ...FWD, label });
    const dh = uniformF32(rows, 7 * rows, -1, 1);
    const dhBuf = gpu.storage("dh", dh);
    const dz = poisoned(gpu, "dz", rows * nodes);
    submitDispatches(gpu, [
      await fffEntropyBackward(kernels, { rows, depth, z: zBuf, dentropy: dhBuf, dz }),
    ]);
    const ref = fffEntropyBackwardRef(z, nodes, dh);
    assertClose(await gpu.readF32(dz, rows * nodes), ref, { ...FWD, label: `${label} backward` });
    const init = uniformF32(rows * nodes, 5, -1, 1);
    const acc = gpu.storage("dz acc", init);
    submitDispatches(gpu, [
      await fffEntropyBackward(kernels, {
        rows,
        depth,
        z: zBuf,
        dentropy: dhBuf,
        dz: acc,
        accumulate: true,
      }),
    ]);
    assertClose(await gpu.readF32(acc, rows * nodes), ref.map((v, i) => v + init[i]!), {
      ...FWD,
      label: `${label} backward ACCUMULATE`,
    });
    for (const b of [zBuf, h, dhBuf, dz, acc]) b.destroy();
  }
});

/** The reference flips of the region leak: element r·N + n of stream (SEED, STREAM) at the step. */
function flipsRef(n: number, leak: number): boolean[] {
  const step = COUNTERS[STEP_INDEX]!;
  return Array.from(
    { length: n },
    (_, i) => philoxUniform(philoxWord(SEED, STREAM, step, i)) < leak,
  );
}

Deno.test("fff probabilities (with region leak), mixture and gate match float64; the mixture backward matches finite differences", async () => {
  const { gpu, kernels } = await testGpu();
  const counters = gpu.storage("counters", COUNTERS);
  const key = { seed: SEED, stream: STREAM, counters, counterIndex: STEP_INDEX };
  for (
    const [rows, depth, width, leak] of [[3, 1, 2, 0], [13, 3, 5, 0.3], [5, 5, 3, 0.1]] as const
  ) {
    const { nodes, leaves } = fffSizes(depth);
    const label = `fff rows=${rows} depth=${depth} leak=${leak}`;
    const z = uniformF32(rows * nodes, 11 * rows + depth, -3, 3);
    const zBuf = gpu.storage("z", z);
    const probs = poisoned(gpu, "probs", rows * nodes);
    const mix = poisoned(gpu, "mix", rows * leaves);
    const shape = { rows, depth, width };
    submitDispatches(gpu, [
      await fffProbs(kernels, { ...shape, ...key, leak, z: zBuf, probs }),
      await fffMixture(kernels, { ...shape, probs, mix }),
    ]);
    const flips = flipsRef(rows * nodes, leak);
    if (leak >= 0.3) assert.ok(flips.some((f) => f), `${label}: some decision leaked`);
    const probsRef = fffProbsRef(z, flips);
    assertClose(await gpu.readF32(probs, rows * nodes), probsRef, {
      ...FWD,
      label: `${label} probs`,
    });
    const mixRef = fffMixtureRef(depth, rows, probsRef);
    const gotMix = await gpu.readF32(mix, rows * leaves);
    assertClose(gotMix, mixRef, { ...FWD, label: `${label} mixture` });
    for (let r = 0; r < rows; r++) {
      const total = gotMix.slice(r * leaves, (r + 1) * leaves).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(total - 1) < 1e-5, `${label}: row ${r}'s leaf weights sum to ${total}`);
    }
    // Backward: dz of Σ dmix·mix(probs(z)), against central differences in float64 (same flips).
    const dmix = uniformF32(rows * leaves, 3 * rows + 1, -1, 1);
    const dmixBuf = gpu.storage("dmix", dmix);
    const numeric = numericGradient(
      (v) => dot(f64(dmix), fffMixtureRef(depth, rows, fffProbsRef(v, flips))),
      f64(z),
    );
    const dz = poisoned(gpu, "dz", rows * nodes);
    submitDispatches(gpu, [
      await fffMixtureBackward(kernels, { ...shape, ...key, leak, probs, dmix: dmixBuf, dz }),
    ]);
    assertClose(await gpu.readF32(dz, rows * nodes), numeric, {
      atol: 1e-5,
      rtol: 1e-4,
      label: `${label} mixture backward vs fd`,
    });
    // The gate and its backward.
    const wide = leaves * width;
    const hidden = uniformF32(rows * wide, 17, 0, 2);
    const hBuf = gpu.storage("hidden", hidden);
    const gated = poisoned(gpu, "gated", rows * wide);
    submitDispatches(gpu, [await fffGate(kernels, { ...shape, hidden: hBuf, mix, gated })]);
    const gateRef = Float64Array.from(
      hidden,
      (v, i) => v * gotMix[Math.floor(i / wide) * leaves + Math.floor((i % wide) / width)]!,
    );
    assertClose(await gpu.readF32(gated, rows * wide), gateRef, { ...FWD, label: `${label} gate` });
    const dg = uniformF32(rows * wide, 19, -1, 1);
    const dgBuf = gpu.storage("dgated", dg);
    const dhidden = poisoned(gpu, "dhidden", rows * wide);
    const dmixAcc = gpu.storage("dmix acc", dmix);
    submitDispatches(gpu, [
      await fffGateBackward(kernels, {
        ...shape,
        hidden: hBuf,
        mix,
        dgated: dgBuf,
        dhidden,
        dmix: dmixAcc,
      }),
    ]);
    const dhRef = Float64Array.from(
      dg,
      (v, i) => v * gotMix[Math.floor(i / wide) * leaves + Math.floor((i % wide) / width)]!,
    );
    const dmixRef = Float64Array.from(dmix, (v, rl) => {
      let s = v;
      for (let j = 0; j < width; j++) s += hidden[rl * width + j]! * dg[rl * width + j]!;
      return s;
    });
    assertClose(await gpu.readF32(dhidden, rows * wide), dhRef, { ...FWD, label: `${label} dh` });
    assertClose(await gpu.readF32(dmixAcc, rows * leaves), dmixRef, {
      ...FWD,
      label: `${label} dmix`,
    });
    for (const b of [zBuf, probs, mix, dmixBuf, dz, hBuf, gated, dgBuf, dhidden, dmixAcc]) {
      b.destroy();
    }
  }
  counters.destroy();
});

/** Random weights of a layer, as f32 values. */
function weightsOf(s: FffRefShape, seed: number, nodeScale = 1) {
  const { nodes, leaves } = fffSizes(s.depth);
  const wide = leaves * s.width;
  return {
    nodeW: uniformF32(nodes * s.inputs, seed, -nodeScale, nodeScale),
    nodeB: uniformF32(nodes, seed + 1, -0.3 * nodeScale, 0.3 * nodeScale),
    w1: uniformF32(wide * s.inputs, seed + 2, -0.5, 0.5),
    b1: uniformF32(wide, seed + 3, -0.5, 0.5),
    w2: uniformF32(s.outputs * wide, seed + 4, -0.5, 0.5),
    b2: uniformF32(leaves * s.outputs, seed + 5, -0.5, 0.5),
  };
}

async function hardOnGpu(s: FffRefShape, w: ReturnType<typeof weightsOf>, x: Float32Array) {
  const { gpu, kernels } = await testGpu();
  const bufs = Object.fromEntries(
    Object.entries(w).map(([k, v]) => [k, gpu.storage(k, v)]),
  ) as Record<keyof typeof w, GPUBuffer>;
  const xBuf = gpu.storage("x", x);
  const y = poisoned(gpu, "y", s.rows * s.outputs);
  submitDispatches(gpu, [await fffHard(kernels, { ...s, ...bufs, x: xBuf, y })]);
  const out = await gpu.readF32(y, s.rows * s.outputs);
  for (const b of [...Object.values(bufs), xBuf, y]) b.destroy();
  return out;
}

Deno.test("fff_hard: the hard path's output matches float64 (depths 1–6, widths below and above the workgroup, scalar and vec4 loads)", async () => {
  for (
    const s of [
      { rows: 1, inputs: 1, outputs: 1, depth: 1, width: 1 },
      { rows: 9, inputs: 37, outputs: 10, depth: 3, width: 5 },
      { rows: 11, inputs: 36, outputs: 7, depth: 3, width: 5 }, // vec4 loads (in % 4 = 0)
      { rows: 5, inputs: 130, outputs: 3, depth: 6, width: 70 },
      { rows: 66, inputs: 64, outputs: 65, depth: 2, width: 64 },
    ]
  ) {
    const w = weightsOf(s, s.rows + s.depth);
    const x = uniformF32(s.rows * s.inputs, 3 * s.rows, -1, 1);
    const ref = fffHardRef(s, w, x);
    // Random weights reach several leaves, so a wrong route would show.
    if (s.rows >= 9) assert.ok(new Set(ref.leaves).size > 1, "rows reach several leaves");
    assertClose(await hardOnGpu(s, w, x), ref.y, {
      atol: 1e-5,
      rtol: 1e-4,
      label: `fff_hard ${JSON.stringify(s)}`,
    });
  }
});

Deno.test("fff: the hard path is the soft mixture's argmax path, and equals the soft output once decisions saturate", async () => {
  const { gpu, kernels } = await testGpu();
  const s = { rows: 40, inputs: 12, outputs: 4, depth: 4, width: 6 };
  const { nodes, leaves } = fffSizes(s.depth);
  const counters = gpu.storage("counters", COUNTERS);
  for (const scale of [1, 300]) {
    const w = weightsOf(s, 5, scale);
    const x = uniformF32(s.rows * s.inputs, 8, -1, 1);
    // The GPU's soft probabilities and mixture, from the node logits of the reference.
    const soft = fffSoftRef(s, w, x);
    const zBuf = gpu.storage("z", Float32Array.from(soft.z));
    const probs = poisoned(gpu, "probs", s.rows * nodes);
    const mix = poisoned(gpu, "mix", s.rows * leaves);
    const shape = { rows: s.rows, depth: s.depth };
    submitDispatches(gpu, [
      await fffProbs(kernels, {
        ...shape,
        seed: 0,
        stream: 0,
        counters,
        leak: 0,
        z: zBuf,
        probs,
      }),
      await fffMixture(kernels, { ...shape, probs, mix }),
    ]);
    const p = await gpu.readF32(probs, s.rows * nodes);
    const c = await gpu.readF32(mix, s.rows * leaves);
    const hard = await hardOnGpu(s, w, x);
    let saturated = 0;
    for (let r = 0; r < s.rows; r++) {
      // The argmax path: at each node the more probable branch.
      let n = 0;
      let margin = Infinity;
      for (let d = 0; d < s.depth; d++) {
        margin = Math.min(margin, Math.abs(soft.z[r * nodes + n]!));
        n = 2 * n + 1 + (p[r * nodes + n]! >= 0.5 ? 1 : 0);
      }
      const leaf = n - nodes;
      const rowOf = (v: ArrayLike<number>) =>
        Array.from(v).slice(r * s.outputs, (r + 1) * s.outputs);
      assertClose(rowOf(hard), fffLeafRef(s, w, x, r, leaf), {
        ...FWD,
        label: `row ${r} (node scale ${scale}): hard output vs leaf ${leaf} of the argmax path`,
      });
      // Saturated decisions (every |z| on the path ≥ 10): the argmax leaf carries the whole
      // mixture, and the soft output is the hard one.
      if (scale > 1 && margin >= 10) {
        saturated++;
        const weight = c[r * leaves + leaf]!;
        assert.ok(weight > 0.999, `row ${r}: argmax leaf weight ${weight}`);
        assertClose(rowOf(hard), rowOf(soft.y), {
          atol: 1e-2,
          rtol: 1e-2,
          label: `row ${r}: saturated soft vs hard`,
        });
      }
    }
    if (scale > 1) assert.ok(saturated >= s.rows / 2, `only ${saturated} rows saturated`);
    for (const b of [zBuf, probs, mix]) b.destroy();
  }
  counters.destroy();
});

Deno.test("fff in a plan: the evaluation pass runs only the hard-path kernel, and its loss is the float64 hard path's", async () => {
  const { gpu, kernels } = await testGpu();
  const s = { rows: 7, inputs: 5, outputs: 3, depth: 2, width: 4 };
  const g = new Graph(s.rows);
  const logits = nn.fff(g, g.input("x", s.inputs), "tree", {
    out: s.outputs,
    depth: s.depth,
    leafWidth: s.width,
  });
  const { loss, correct } = nn.labelLoss(g, "cross-entropy", logits);
  g.addLoss(loss, 1, { main: true, correct });
  const scope = gpu.scope("fff plan");
  try {
    const plan = await ModelPlan.build({
      gpu: scope,
      kernels: kernels.withGpu(scope),
      graph: g,
      ops: builtinOps(),
      counters: createCounters(scope),
      randomCounter: 2,
      seed: 1,
    });
    const w = weightsOf(s, 21, 2);
    const byName: Record<string, Float32Array> = {
      "tree.nodes.weight": w.nodeW,
      "tree.nodes.bias": w.nodeB,
      "tree.fc1.weight": w.w1,
      "tree.fc1.bias": w.b1,
      "tree.fc2.weight": w.w2,
      "tree.fc2.bias": w.b2,
    };
    const flat = new Float32Array(plan.layout.total);
    for (const seg of plan.layout.segments) flat.set(byName[seg.param.name]!, seg.offset);
    const x = uniformF32(s.rows * s.inputs, 22, -1, 1);
    const labels = Uint32Array.from({ length: s.rows }, (_, r) => r % s.outputs);
    scope.write(plan.params, flat);
    scope.write(plan.x, x);
    scope.write(plan.labels, labels);
    const evalPass = await plan.evalForward(s.rows);
    const names = evalPass.map((d) => d.label);
    // The layer's only work is the hard path: no node layer, mixture, leaves' matmuls or entropy.
    assert.deepStrictEqual(names.filter((n) => n.startsWith("tree")), ["tree hard path"]);
    assert.strictEqual(names.length, 2, `eval dispatches: ${names}`);
    const encoder = scope.device.createCommandEncoder();
    encodeSteps(encoder, [dispatchPhase("eval", evalPass)]);
    scope.submit([encoder.finish()]);
    const got = await scope.readF32(plan.lossRows, s.rows);
    const hard = fffHardRef(s, w, x).y;
    const ref = Array.from({ length: s.rows }, (_, r) => {
      const row = hard.slice(r * s.outputs, (r + 1) * s.outputs);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      return lse - row[labels[r]!]!;
    });
    assertClose(got, ref, { ...FWD, label: "eval loss rows vs the float64 hard path" });
  } finally {
    scope.dispose();
  }
});

Deno.test("fff model gradients: the soft mixture and the entropy term, every parameter and the input, against finite differences", async () => {
  const g = new Graph(5);
  const x = g.input("x", 6);
  const h = nn.fff(g, x, "tree", { out: 4, depth: 2, leafWidth: 3, hardening: 0.5 });
  const logits = nn.linear(g, nn.activation(g, h, "tanh"), "head", { out: 3 });
  const { loss, correct } = nn.labelLoss(g, "cross-entropy", logits);
  g.addLoss(loss, 1, { main: true, correct });
  assert.deepStrictEqual(g.losses.map((l) => [l.name, l.weight]), [["tree.entropy", 0.5], [
    "main",
    1,
  ]]);
  const random = seededRandom(4);
  const layout = new ParamLayout(g.params);
  const init = layout.initialValues(random);
  const params = new Map<string, Float64Array>();
  for (const seg of layout.segments) {
    const v = Float64Array.from(init.subarray(seg.offset, seg.offset + seg.size), (u) =>
      // Larger node weights, so the entropy's gradient is not ~0 near p = ½.
      seg.param.name.startsWith("tree.nodes") ? 3 * u : u + 0.1 * (random() - 0.5));
    params.set(seg.param.name, Float64Array.from(Float32Array.from(v)));
  }
  const inputs = {
    params,
    input: Float64Array.from(Float32Array.from({ length: 30 }, () => 2 * random() - 1)),
    labels: [0, 1, 2, 1, 0],
  };
  const gpu = await gpuGradients(g, inputs);
  const fd = numericGradients(g, inputs);
  const tol = { atol: 3e-5, rtol: 2e-3 };
  for (const p of g.params) {
    assertClose(gpu.params.get(p.name)!, fd.params.get(p.name)!, { ...tol, label: `d${p.name}` });
  }
  assertClose(gpu.input, fd.input, { ...tol, label: "dx" });
  const nodeGrad = fd.params.get("tree.nodes.weight")!;
  assert.ok(Math.max(...nodeGrad.map(Math.abs)) > 1e-3, "the node weights get a gradient");
});

Deno.test("fff trains a small task: the loss falls 3× and the hard path classifies; mlp and bottleneck-mlp take fff layers", async () => {
  const { gpu, kernels } = await testGpu();
  for (
    const values of [
      { model: "fff", widths: "16", fff_depth: 2, leaf_width: 8 },
      {
        model: "bottleneck-mlp",
        depth: 1,
        width: 16,
        fff_depth: 2,
        leaf_width: 8,
        region_leak: 0.05,
      },
    ]
  ) {
    const registry = builtinRegistry();
    const config = resolveConfig(registry, [{
      source: "test",
      values: {
        dataset: "synthetic",
        synthetic_features: 16,
        synthetic_classes: 4,
        synthetic_train: 512,
        synthetic_test: 128,
        batch_size: 32,
        epochs: 4,
        lr: 0.01,
        log_every: 4,
        seed: 2,
        ...values,
      },
    }]);
    const losses: number[] = [];
    const outDir = await Deno.makeTempDir({ prefix: "fff-" });
    const result = await train({
      gpu,
      kernels,
      registry,
      config,
      outDir,
      events: { window: (w) => void losses.push(w.loss) },
    });
    await Deno.remove(outDir, { recursive: true });
    const label = JSON.stringify(values);
    assert.ok(
      losses[0]! > 3 * losses.at(-1)!,
      `${label}: losses ${losses.map((l) => l.toFixed(3))}`,
    );
    assert.ok(
      result.test_accuracy >= 0.9,
      `${label}: hard-path test accuracy ${result.test_accuracy}`,
    );
  }
});

Deno.test("nn.fff: the parameters it declares, and bad options name the flag and the range", () => {
  const g = new Graph(2);
  nn.fff(g, g.input("x", 6), "f", { out: 4, depth: 3, leafWidth: 5 });
  assert.deepStrictEqual(g.params.map((p) => [p.name, p.shape]), [
    ["f.nodes.weight", [7, 6]],
    ["f.nodes.bias", [7]],
    ["f.fc1.weight", [40, 6]],
    ["f.fc1.bias", [40]],
    ["f.fc2.weight", [4, 40]],
    ["f.fc2.bias", [8, 4]],
  ]);
  const bad = (options: Partial<nn.FffOptions>) => () =>
    nn.fff(new Graph(2), new Graph(2).input("x", 6), "f", {
      out: 4,
      depth: 3,
      leafWidth: 5,
      ...options,
    });
  assert.throws(
    bad({ depth: 0 }),
    /fff "f": depth \(--fff-depth\) must be an integer in \[1, 16\], got 0/,
  );
  assert.throws(
    bad({ leafWidth: 2000 }),
    /leaf width \(--leaf-width\) must be an integer in \[1, 1024\]/,
  );
  assert.throws(bad({ leak: 1 }), /region leak must be in \[0, 1\), got 1/);
  assert.throws(
    () =>
      resolveConfig(builtinRegistry(), [{
        source: "flags",
        values: { model: "fff", fff_depth: 0 },
      }]),
    /--fff-depth/,
  );
});
