/**
 * The `sam` optimizer: its GPU steps against the float64 SAM of tests/reference/sam.ts over 20
 * steps — over SGD, AdamW (ASAM), LION (one pass) and Adam (gradient accumulation and clipping),
 * at f32 and f16 — and against a two-step SAM written in PyTorch over torch.optim.AdamW over 5
 * steps; its step as phases; its keys (the base's keys work as they do alone, bad values name
 * the key).
 */

import assert from "node:assert";
import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import { buildRun } from "../core/train/build.ts";
import { buildStep } from "../core/train/recipe.ts";
import { describeSteps } from "../core/train/step.ts";
import type { Config } from "../core/train/registry.ts";
import { defineOptimizer } from "../core/train/define_optimizer.ts";
import { samReference } from "./reference/sam.ts";
import { byName, gpuRun, referenceInputs, SAM_RUN } from "./helpers/sam_runs.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { testGpu } from "./helpers/gpu.ts";
import { runTorch } from "./helpers/torch.ts";

/** Tolerances of a comparison with the float64 reference: the weights and the losses. */
interface Tolerance {
  weights: { atol: number; rtol: number };
  losses: { atol: number; rtol: number };
}

// f32: each step's gradients are sums over ≤ 16·12 products (~1e-7 relative), so the two passes
// and the update move the weights (|w| ≲ 1) ~1e-8 per step from float64; after 20 steps they
// differ by ≤ 3e-7 (measured on llvmpipe: 0.9–2.8e-7 over the runs below), while the perturbation
// moves them by ≥ 5e-2 (ρ against ρ = 0), so the tolerance is 10× the noise and far below SAM.
const F32: Tolerance = {
  weights: { atol: 3e-6, rtol: 1e-5 },
  losses: { atol: 2e-6, rtol: 1e-5 },
};

/** Trains `values` on the GPU and in float64; compares the first-pass losses and the weights. */
async function checkAgainstReference(values: Config, tol: Tolerance = F32): Promise<void> {
  const run = await gpuRun(values);
  const c = run.config;
  const inputs = await referenceInputs(c);
  const ref = samReference({
    ...inputs,
    rho: Number(c.rho),
    adaptive: c.adaptive === true,
    onePass: c.one_pass === true,
  });
  const label = JSON.stringify(values);
  assert.strictEqual(run.losses.length, 20, `${label}: one window per step`);
  assertClose(run.losses, ref.losses, { ...tol.losses, label: `${label} losses` });
  const want = byName(inputs.layout, inputs.params);
  for (const [name, w] of Object.entries(want)) {
    assertClose(run.tensors[name]!, w, {
      ...tol.weights,
      label: `${label} ${name} after 20 steps`,
    });
  }
  if (ref.prevGrad) {
    const prev = byName(inputs.layout, ref.prevGrad);
    for (const [name, g] of Object.entries(prev)) {
      assertClose(run.tensors[`optim.${name}.sam_prev_grad`]!, g, {
        ...tol.weights,
        label: `${label} ${name} previous gradient`,
      });
    }
  }
  // The perturbation matters far beyond the tolerance: the base alone ends elsewhere.
  const plain = await gpuRun({ ...values, rho: 0 });
  const moved = Object.keys(want).some((name) =>
    plain.tensors[name]!.some((v, j) => Math.abs(v - run.tensors[name]![j]!) > 1e-2)
  );
  assert.ok(moved, `${label}: ρ = ${c.rho} and ρ = 0 end at weights > 1e-2 apart`);
}

Deno.test("sam over sgd (momentum 0.9) matches float64 SAM over 20 steps", async () => {
  await checkAgainstReference(
    { optimizer: "sam", sam_base: "sgd", momentum: 0.9, rho: 0.1, weight_decay: 0.01 },
  );
});

Deno.test("sam over adamw with adaptive (ASAM) matches float64 over 20 steps", async () => {
  await checkAgainstReference(
    { optimizer: "sam", rho: 0.5, adaptive: true, weight_decay: 0.05, lr: 0.01 },
  );
});

Deno.test("sam one-pass (S²-SAM) over lion matches float64 over 20 steps", async () => {
  await checkAgainstReference(
    { optimizer: "sam", sam_base: "lion", one_pass: true, rho: 0.2, lr: 0.003 },
  );
});

Deno.test("sam over adam with grad-accum 2 and clipping matches float64 SAM on the whole batch", async () => {
  await checkAgainstReference(
    {
      optimizer: "sam",
      sam_base: "adam",
      batch_size: 8,
      grad_accum: 2,
      max_grad_norm: 0.3,
      rho: 0.1,
      lr: 0.01,
      weight_decay: 0.01,
    },
  );
});

Deno.test("sam with --precision f16 trains within f16 rounding of float64 SAM", async () => {
  const { gpu } = await testGpu();
  assert.ok(gpu.has("shader-f16"), "the test adapter has shader-f16 (llvmpipe does)");
  // f16 rounds the stored activations and the weights' copy to 11 bits (~5e-4 relative): the
  // gradients carry that error each step and the f32 master weights sum it; after 20 steps the
  // weights are 1.3e-4 from float64 (measured on llvmpipe), the perturbation's effect 6e-2.
  await checkAgainstReference(
    { optimizer: "sam", sam_base: "sgd", momentum: 0.9, rho: 0.1, precision: "f16" },
    { weights: { atol: 1e-3, rtol: 1e-3 }, losses: { atol: 1e-3, rtol: 1e-3 } },
  );
});

// torch.optim.AdamW in float64 under a two-step SAM (Foret et al.; e = ρ·g/(‖g‖ + 1e-12) over
// all parameters, the step at w with the gradient at w + e), on the same MLP, initial weights and
// batches.
const TORCH_SAM = `
import json, sys, torch
torch.set_default_dtype(torch.float64)
c = json.load(sys.stdin)
layers = []
for l in c["layers"]:
    lin = torch.nn.Linear(l["in"], l["out"])
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(l["w"]).reshape(l["out"], l["in"]))
        lin.bias.copy_(torch.tensor(l["b"]))
    layers.append(lin)
mods = []
for i, lin in enumerate(layers):
    mods.append(lin)
    if i < len(layers) - 1:
        mods.append(torch.nn.GELU())
model = torch.nn.Sequential(*mods)
decay = [l.weight for l in layers]
no_decay = [l.bias for l in layers]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": c["wd"]},
                         {"params": no_decay, "weight_decay": 0.0}], lr=c["lr"])
x = torch.tensor(c["x"]).reshape(-1, c["features"])
y = torch.tensor(c["labels"])
loss_fn = torch.nn.CrossEntropyLoss()
params = decay + no_decay
for rows in c["batches"]:
    xb, yb = x[rows], y[rows]
    opt.zero_grad()
    loss_fn(model(xb), yb).backward()
    norm = torch.norm(torch.stack([p.grad.norm(2) for p in params]), 2)
    es = []
    with torch.no_grad():
        for p in params:
            e = c["rho"] * p.grad / (norm + 1e-12)
            p.add_(e)
            es.append(e)
    opt.zero_grad()
    loss_fn(model(xb), yb).backward()
    with torch.no_grad():
        for p, e in zip(params, es):
            p.sub_(e)
    opt.step()
print(json.dumps({"w": [l.weight.detach().flatten().tolist() for l in layers],
                  "b": [l.bias.detach().tolist() for l in layers]}))
`;

Deno.test("sam over adamw matches a two-step SAM over torch.optim.AdamW over 5 steps", async () => {
  const values = {
    optimizer: "sam",
    rho: 0.1,
    lr: 0.01,
    weight_decay: 0.05,
    train_samples: 16 * 5,
    epochs: 1,
  };
  const run = await gpuRun(values);
  const inputs = await referenceInputs(run.config);
  const flat = byName(inputs.layout, inputs.params);
  const names = inputs.layout.segments.map((s) => s.param.name);
  const layers = inputs.shapes.map((s, l) => ({
    in: s.inF,
    out: s.outF,
    w: flat[names[2 * l]!],
    b: flat[names[2 * l + 1]!],
  }));
  const torch = await runTorch(TORCH_SAM, {
    layers,
    x: Array.from(inputs.x),
    labels: Array.from(inputs.labels),
    features: inputs.features,
    batches: inputs.batches,
    lr: 0.01,
    wd: 0.05,
    rho: 0.1,
  }, "torch SAM") as { w: number[][]; b: number[][] };
  // f32 on the GPU against float64 in torch: 8e-8 apart after 5 steps (measured on llvmpipe), the
  // steps moving the weights by 5e-2; the tolerance is 10× the noise.
  const tol = { atol: 1e-6, rtol: 1e-5 };
  inputs.shapes.forEach((_, l) => {
    assertClose(run.tensors[names[2 * l]!]!, torch.w[l]!, {
      ...tol,
      label: `torch SAM ${names[2 * l]}`,
    });
    assertClose(run.tensors[names[2 * l + 1]!]!, torch.b[l]!, {
      ...tol,
      label: `torch SAM ${names[2 * l + 1]}`,
    });
  });
});

Deno.test("sam: the step is pass → ‖g‖² → perturb → pass again → restore → base update; one pass with one_pass", async () => {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  const describe = async (values: Config) => {
    const config = resolveConfig(registry, [{ source: "test", values: { ...SAM_RUN, ...values } }]);
    const run = await buildRun({ gpu, kernels, registry, config });
    try {
      return { steps: describeSteps((await buildStep(run)).phases), slots: run.optimizer.slots };
    } finally {
      run.dispose();
    }
  };
  const two = await describe({ optimizer: "sam" });
  assert.deepStrictEqual(two.steps, [
    "clear zero gradients",
    "micro-batches ×1",
    "  dispatch forward+backward",
    "dispatch ‖t·g‖²",
    "dispatch w += ε",
    "clear zero gradients",
    "pass again ×1",
    "  dispatch rewind counters",
    "  micro-batches ×1",
    "    dispatch forward+backward",
    "copy w restored",
    "dispatch sam update",
    "dispatch next optimizer step",
  ]);
  // The base's slots under their own names, nothing of SAM's own in two-pass mode.
  assert.deepStrictEqual(two.slots, ["exp_avg", "exp_avg_sq"]);
  const one = await describe({
    optimizer: "sam",
    sam_base: "sgd",
    one_pass: true,
    max_grad_norm: 1,
  });
  assert.deepStrictEqual(one.steps, [
    "clear zero gradients",
    "dispatch ‖t·g‖²",
    "dispatch w += ε",
    "micro-batches ×1",
    "  dispatch forward+backward",
    "copy w restored",
    "copy keep g for the next step",
    "dispatch Σg²",
    "dispatch sam update",
    "dispatch next optimizer step",
  ]);
  assert.deepStrictEqual(one.slots, ["momentum_buffer", "sam_prev_grad"]);
});

Deno.test("sam: the base's keys apply as they do alone, and bad ones name the key", () => {
  const registry = builtinRegistry();
  const resolve = (values: Config) =>
    resolveConfig(registry, [{ source: "flags", values: { ...SAM_RUN, ...values } }]);
  const c = resolve({ optimizer: "sam", sam_base: "sgd", momentum: "0.5", nesterov: "true" });
  assert.strictEqual(c.momentum, 0.5);
  assert.strictEqual(c.nesterov, true);
  assert.strictEqual(resolve({ optimizer: "sam" }).beta2, 0.999, "adamw's defaults by default");
  assert.throws(
    () => resolve({ optimizer: "sam", momentum: 0.5 }),
    /unknown flag --momentum[\s\S]*optimizer "sgd"/,
  );
  assert.throws(
    () => resolve({ optimizer: "sam", sam_base: "adamx" }),
    /sam_base "adamx" .*is not an optimizer; known are .*"adamw"/,
  );
  assert.throws(
    () => resolve({ optimizer: "sam", sam_base: "ssam" }),
    /sam_base "ssam": optimizer "sam" needs a base that updates in one pass/,
  );
  assert.throws(() => resolve({ optimizer: "sam", rho: -1 }), /--rho must be a number ≥ 0/);
  // A base that owns one of SAM's keys would have one silently set the other's.
  registry.register(
    defineOptimizer({
      name: "rho-sgd",
      description: "SGD with a key named rho (test)",
      slots: [],
      hyper: { rho: { default: 1 } },
      update: "p = p - lr * hyper.rho * g;",
    }),
    "test",
  );
  assert.throws(
    () => resolve({ optimizer: "sam", sam_base: "rho-sgd" }),
    /optimizer "rho-sgd" \(sam_base of "sam"\) and optimizer "sam" both declare the key "rho"/,
  );
  assert.throws(
    () => resolve({ optimizer: "ssam", sparsity: 1.5 }),
    /--sparsity must be a number in \[0, 1\]/,
  );
  assert.throws(
    () => resolve({ optimizer: "ssam", ssam_mask: "magic" }),
    /--ssam-mask must be one of "fisher", "dynamic"/,
  );
});
