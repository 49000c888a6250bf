/**
 * Whole-model gradient checks: the gradient of the loss with respect to every parameter and the
 * input, computed by the plan's backward on the GPU, against central finite differences of the
 * float64 graph interpreter (tests/reference/graph_interpreter.ts) — for (a) a BottleneckMLP with
 * LayerNorm and residuals, (b) a 3-D token-mixing block, (c) a linear layer whose weight comes
 * from another small network, (d) a model with an auxiliary loss, (e) SELU blocks without
 * LayerNorm under stochastic depth — and (a) against one PyTorch backward too. Frozen parameters get no gradient buffer and no backward work.
 *
 * Tolerances: the finite differences are float64 (error < 1e-8, see numericGradients); the GPU
 * computes in f32, whose sums over ≤ 64 terms carry ~1e-6 relative error, and its GELU uses an
 * erf approximation good to 1.5e-7 (wgsl/activation.wgsl) where the interpreter's erf is exact.
 * So |gpu − fd| ≤ 3e-5 + 2e-3·|fd|: an order above the errors expected, and orders below the
 * gradients themselves (≥ 1e-3 for most entries), so a wrong term still fails.
 */

import { ok, strictEqual } from "node:assert";
import { Graph, type Tensor } from "../core/graph/graph.ts";
import * as nn from "../core/graph/nn.ts";
import { interpretLoss } from "./reference/graph_interpreter.ts";
import {
  checkModelGradients,
  gpuGradients,
  GRAD_TOL,
  jitteredInputs,
} from "./helpers/model_grads.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { runTorch } from "./helpers/torch.ts";
import { dropPathScalesRef } from "./reference/drop_path.ts";

/** (a) BottleneckMLP: Linear in, 2 pre-LN residual blocks with GELU, Linear out. */
function bottleneck(batch = 5): { graph: Graph; logits: Tensor } {
  const g = new Graph(batch);
  let h = nn.linear(g, g.input("x", 6), "linear_in", { out: 5 });
  for (let l = 0; l < 2; l++) {
    const n = nn.layerNorm(g, h, `layernorms.${l}`);
    const a = nn.linear(g, n, `blocks.${l}.block.0`, { out: 10, activation: "gelu" });
    h = nn.add(g, h, nn.linear(g, a, `blocks.${l}.block.2`, { out: 5 }));
  }
  return { graph: g, logits: nn.linear(g, h, "linear_out", { out: 3 }) };
}

function withMainLoss(g: Graph, logits: Tensor, smoothing = 0) {
  const { loss, correct } = nn.labelLoss(g, "cross-entropy", logits, { smoothing });
  g.addLoss(loss, 1, { main: true, correct });
}

Deno.test("model gradients (a): BottleneckMLP with LayerNorm and residuals, every parameter and the input", async () => {
  const { graph, logits } = bottleneck();
  withMainLoss(graph, logits, 0.1);
  await checkModelGradients(graph, jitteredInputs(graph, 3, 3), "bottleneck");
});

Deno.test("model gradients (a): the same BottleneckMLP's gradients equal one PyTorch backward", async () => {
  const { graph, logits } = bottleneck(4);
  withMainLoss(graph, logits);
  const inputs = jitteredInputs(graph, 9, 3);
  const gpu = await gpuGradients(graph, inputs);
  const torch = await runTorch(
    `
import json, sys, torch
import torch.nn as nn, torch.nn.functional as F
torch.set_default_dtype(torch.float64)
req = json.load(sys.stdin)
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(5, 10), nn.GELU(), nn.Linear(10, 5))
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear_in = nn.Linear(6, 5)
        self.blocks = nn.ModuleList([Block() for _ in range(2)])
        self.layernorms = nn.ModuleList([nn.LayerNorm(5) for _ in range(2)])
        self.linear_out = nn.Linear(5, 3)
    def forward(self, x):
        h = self.linear_in(x)
        for b, n in zip(self.blocks, self.layernorms):
            h = h + b.block(n(h))
        return self.linear_out(h)
m = Model()
state = {k: torch.tensor(v).reshape(m.state_dict()[k].shape) for k, v in req["params"].items()}
m.load_state_dict(state, strict=True)
x = torch.tensor(req["x"]).reshape(4, 6).requires_grad_()
F.cross_entropy(m(x), torch.tensor(req["labels"])).backward()
print(json.dumps({"params": {k: p.grad.flatten().tolist() for k, p in m.named_parameters()},
                  "x": x.grad.flatten().tolist()}))
`,
    {
      params: Object.fromEntries([...inputs.params].map(([k, v]) => [k, [...v]])),
      x: [...inputs.input],
      labels: Array.from(inputs.labels),
    },
    "PyTorch BottleneckMLP backward",
  ) as { params: Record<string, number[]>; x: number[] };
  strictEqual(Object.keys(torch.params).length, graph.params.length, "strict state_dict");
  for (const p of graph.params) {
    assertClose(gpu.params.get(p.name)!, torch.params[p.name]!, {
      ...GRAD_TOL,
      label: `torch d${p.name}`,
    });
  }
  assertClose(gpu.input, torch.x, { ...GRAD_TOL, label: "torch dx" });
});

Deno.test("model gradients (b): a token-mixing block (transpose → linear → transpose back → residual)", async () => {
  const g = new Graph(3);
  const x = g.input("x", [4, 5]); // [B, T=4 tokens, C=5 channels]
  const n = nn.layerNorm(g, x, "norm");
  const t = nn.transpose(g, n, 1, 2); // [B, C, T]
  const mixed = nn.linear(
    g,
    nn.linear(g, t, "token.0", { out: 6, activation: "gelu" }),
    "token.1",
    { out: 4 },
  );
  const back = nn.transpose(g, mixed, 1, 2); // [B, T, C]
  const h = nn.add(g, x, back);
  const pooled = nn.mean(g, h, 1); // [B, C]
  withMainLoss(g, nn.linear(g, pooled, "head", { out: 3 }));
  await checkModelGradients(g, jitteredInputs(g, 5, 3), "token mixing");
});

Deno.test("model gradients (c): a linear whose weight is another network's output (a hypernetwork)", async () => {
  const g = new Graph(4);
  const x = g.input("x", 4);
  // The generator: a layer embedding [1, 3] → [1, 12] → the target's weight [3, 4], and its bias.
  const embedding = g.param("embedding", [1, 3], { kind: "normal", std: 1 });
  const generated = nn.linear(
    g,
    nn.linear(g, embedding, "gen.0", { out: 8, activation: "tanh" }),
    "gen.1",
    { out: 15 },
  );
  const weight = nn.reshape(g, nn.slice(g, generated, 0, 12), [3, 4]);
  const bias = nn.reshape(g, nn.slice(g, generated, 12, 3), [3]);
  const h = nn.linearWith(g, x, weight, bias, { name: "target" });
  // A shared [K, N] matrix over the batch too (batched matmul's b-shared form).
  const mix = g.param("mix", [3, 3], { kind: "normal", std: 0.5 });
  withMainLoss(g, nn.matmul(g, h, mix));
  const { fd } = await checkModelGradients(g, jitteredInputs(g, 7, 3), "hypernetwork");
  ok(Math.max(...fd.params.get("gen.0.weight")!.map(Math.abs)) > 1e-4, "the generator learns");
});

Deno.test("model gradients (d): a model with an auxiliary loss term (its own weight, through general ops)", async () => {
  const g = new Graph(5);
  const x = g.input("x", 6);
  const h = nn.linear(g, x, "fc", { out: 7, activation: "gelu" });
  const logits = nn.linear(g, h, "head", { out: 3 });
  withMainLoss(g, logits);
  // An activity penalty: 0.3 · mean over rows of the mean hidden activation.
  g.addLoss(nn.mean(g, h, 1), 0.3, { name: "activity" });
  const inputs = jitteredInputs(g, 11, 3);
  await checkModelGradients(g, inputs, "auxiliary loss");
  // The auxiliary term moves the loss: without it the interpreter's loss differs.
  const plain = new Graph(5);
  const px = plain.input("x", 6);
  withMainLoss(
    plain,
    nn.linear(plain, nn.linear(plain, px, "fc", { out: 7, activation: "gelu" }), "head", {
      out: 3,
    }),
  );
  ok(Math.abs(interpretLoss(g, inputs) - interpretLoss(plain, inputs)) > 1e-3);
});

Deno.test("model gradients (e): SELU residual blocks without LayerNorm, with stochastic depth drawn on the GPU", async () => {
  // The AUNN-style SELU block (LeCun-normal linears, no norm, residual kept), the second block's
  // branch under drop_path p = 0.5 in training: the interpreter multiplies each row by the scale
  // the GPU's mask gives it (seed 1, stream node id + 1, step 0 — tests/helpers/model_grads.ts).
  const g = new Graph(6);
  let h = nn.linear(g, g.input("x", 5), "linear_in", { out: 4, init: "lecun-normal" });
  const rates = nn.dropPathRates(0.5, 2);
  for (let l = 0; l < 2; l++) {
    const a = nn.linear(g, h, `blocks.${l}.block.0`, {
      out: 8,
      activation: "selu",
      init: "lecun-normal",
    });
    const b = nn.linear(g, a, `blocks.${l}.block.2`, { out: 4, init: "lecun-normal" });
    h = nn.add(g, h, nn.dropPath(g, b, rates[l]!));
  }
  withMainLoss(g, nn.linear(g, h, "linear_out", { out: 3 }));
  const node = g.nodes.find((n) => n.op === "drop_path")!;
  strictEqual(node.attrs.p, 0.5);
  const scales = dropPathScalesRef(6, 0.5, { seed: 1, stream: node.id + 1, step: 0 });
  ok(scales.includes(0) && scales.includes(2), `the mask keeps and drops rows: [${scales}]`);
  const inputs = { ...jitteredInputs(g, 17, 3), dropPathScales: new Map([[node.id, scales]]) };
  await checkModelGradients(g, inputs, "SELU blocks with drop_path");
});

Deno.test("frozen parameters get no gradient buffer, no optimizer share and no backward work", async () => {
  const build = () => {
    const { graph, logits } = bottleneck(4);
    withMainLoss(graph, logits);
    return graph;
  };
  const all = build();
  const inputs = jitteredInputs(all, 13, 3);
  const full = await gpuGradients(all, inputs, { inputGrad: false });
  // A linear probe: everything but the head frozen.
  const probe = build();
  const frozen = (name: string) => !name.startsWith("linear_out");
  const head = await gpuGradients(probe, inputs, { frozen, inputGrad: false });
  // The gradient buffer holds the head alone: 3·5 weights and 3 biases, each segment 64-aligned.
  strictEqual(head.gradElements, 64 + 64);
  // Unfrozen, it covers every segment: 16 of them, 64 elements each.
  strictEqual(full.gradElements, 16 * 64);
  strictEqual([...head.params.keys()].join(","), "linear_out.weight,linear_out.bias");
  // The head's gradient is the same; the body's backward is not recorded (dW and dX of the head,
  // its bias: 3 dispatches; the full model needs every layer's).
  assertClose(head.params.get("linear_out.weight")!, full.params.get("linear_out.weight")!, {
    atol: 0,
    rtol: 0,
    label: "head dW, frozen body",
  });
  ok(head.backwardDispatches <= 3, `probe backward: ${head.backwardDispatches} dispatches`);
  ok(full.backwardDispatches > 12, `full backward: ${full.backwardDispatches} dispatches`);
});
