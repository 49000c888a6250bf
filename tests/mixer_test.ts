/**
 * The `mixer` model: (a) on images — patches cut by transposes on the GPU, token mixing on the
 * transposed view — every parameter's and the input's gradient against central finite
 * differences of the float64 graph interpreter, and against one PyTorch backward of the same
 * Mixer written with `Conv2d` patches and `nn.Linear` token mixing (which fixes the patch order and
 * the `state_dict` names); (b) on table rows, features grouped into tokens (zero-padded) with a
 * per-token embedding and BCE on two classes, against finite differences; (c) it trains: images
 * and a CSV the test writes, its loss falling by a stated factor.
 *
 * Tolerances as tests/model_grad_test.ts: f32 sums over ≤ 64 terms and the erf approximation of
 * GELU (1.5e-7) against an exact float64 reference: |gpu − ref| ≤ 3e-5 + 2e-3·|ref|.
 */

import assert from "node:assert";
import { join } from "node:path";
import { Graph } from "../core/graph/graph.ts";
import * as nn from "../core/graph/nn.ts";
import { resolveConfig } from "../core/train/config.ts";
import type { Config, DatasetInfo } from "../core/train/registry.ts";
import { train } from "../core/train/trainer.ts";
import { syntheticDataset } from "../datasets/plugins.ts";
import { mixer } from "../plugins/models/mixer.ts";
import { builtinRegistry } from "../plugins/mod.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { testGpu } from "./helpers/gpu.ts";
import {
  checkModelGradients,
  gpuGradients,
  GRAD_TOL,
  jitteredInputs,
} from "./helpers/model_grads.ts";
import { runTorch } from "./helpers/torch.ts";
import { tabularCsv } from "./fixtures/tabular_csv.ts";

/** The mixer's graph at `batch` for `values` over its defaults, with the trainer's CE if needed. */
function mixerGraph(batch: number, info: DatasetInfo, values: Config): Graph {
  const g = new Graph(batch);
  const logits = mixer.build(
    g,
    g.input("x", info.features),
    { ...mixer.defaults, ...values },
    info,
  );
  if (!g.mainLoss) {
    const { loss, correct } = nn.labelLoss(g, "cross-entropy", logits);
    g.addLoss(loss, 1, { main: true, correct });
  }
  return g;
}

// Two channels of 4 × 6: patch 2 gives 6 tokens of 8 values; 5 channels of width; token MLP
// 6 → 9 → 6, channel MLP 5 → 10 → 5.
const IMAGE: DatasetInfo = {
  features: 48,
  classes: 3,
  image: { channels: 2, height: 4, width: 6 },
};
const IMAGE_KEYS = {
  patch_size: 2,
  width: 5,
  depth: 2,
  token_expansion: 1.5,
  channel_expansion: 2,
};

Deno.test("mixer (a): image patches and token mixing — every parameter's and the input's gradient against float64 finite differences", async () => {
  const graph = mixerGraph(3, IMAGE, IMAGE_KEYS);
  // The patches and the token mixing run as GPU transposes.
  assert.strictEqual(graph.nodes.filter((n) => n.op === "transpose").length, 2 + 2 * 2);
  assert.deepStrictEqual(graph.params.find((p) => p.name === "stem.proj.weight")!.shape, [5, 8]);
  assert.deepStrictEqual(
    graph.params.find((p) => p.name === "blocks.1.mlp_tokens.fc1.weight")!.shape,
    [9, 6],
  );
  await checkModelGradients(graph, jitteredInputs(graph, 4, 3), "mixer image");
});

Deno.test("mixer (a): the same gradients as one PyTorch backward of a Conv2d-patch Mixer with timm's state_dict", async () => {
  const graph = mixerGraph(4, IMAGE, IMAGE_KEYS);
  const inputs = jitteredInputs(graph, 8, 3);
  const gpu = await gpuGradients(graph, inputs);
  const torch = await runTorch(
    `
import json, sys, torch
import torch.nn as nn, torch.nn.functional as F
torch.set_default_dtype(torch.float64)
req = json.load(sys.stdin)
class Mlp(nn.Module):
    def __init__(self, n, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(n, hidden), nn.Linear(hidden, n)
    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))
class Block(nn.Module):
    def __init__(self, tokens, width):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.mlp_tokens, self.mlp_channels = Mlp(tokens, 9), Mlp(width, 10)
    def forward(self, x):
        x = x + self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.mlp_channels(self.norm2(x))
class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(2, 5, 2, stride=2)
class Mixer(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem()
        self.blocks = nn.ModuleList([Block(6, 5) for _ in range(2)])
        self.norm, self.head = nn.LayerNorm(5), nn.Linear(5, 3)
    def forward(self, x):
        x = self.stem.proj(x).flatten(2).transpose(1, 2)
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x).mean(1))
m = Mixer()
shapes = {k: v.shape for k, v in m.state_dict().items()}
m.load_state_dict({k: torch.tensor(v).reshape(shapes[k]) for k, v in req["params"].items()})
x = torch.tensor(req["x"]).reshape(4, 2, 4, 6).requires_grad_()
F.cross_entropy(m(x), torch.tensor(req["labels"])).backward()
print(json.dumps({"params": {k: p.grad.flatten().tolist() for k, p in m.named_parameters()},
                  "x": x.grad.flatten().tolist()}))
`,
    {
      params: Object.fromEntries([...inputs.params].map(([k, v]) => [k, [...v]])),
      x: [...inputs.input],
      labels: Array.from(inputs.labels),
    },
    "PyTorch Mixer backward",
  ) as { params: Record<string, number[]>; x: number[] };
  assert.strictEqual(Object.keys(torch.params).length, graph.params.length, "strict state_dict");
  for (const p of graph.params) {
    assertClose(gpu.params.get(p.name)!, torch.params[p.name]!, {
      ...GRAD_TOL,
      label: `torch d${p.name}`,
    });
  }
  assertClose(gpu.input, torch.x, { ...GRAD_TOL, label: "torch dx" });
});

Deno.test("mixer (b): table rows as padded token groups with per-token embeddings and BCE — gradients against float64 finite differences", async () => {
  // 7 features in groups of 2: 4 tokens, the last padded with a zero.
  const info: DatasetInfo = { features: 7, classes: 2 };
  const graph = mixerGraph(3, info, { token_group: 2, width: 4, depth: 2, channel_expansion: 1.5 });
  assert.strictEqual(graph.mainLoss?.name, "bce", "two classes train one logit with BCE");
  assert.ok(graph.nodes.some((n) => n.op === "pad"));
  assert.deepStrictEqual(graph.params.find((p) => p.name === "stem.weight")!.shape, [4, 2, 4]);
  assert.deepStrictEqual(graph.params.find((p) => p.name === "head.weight")!.shape, [1, 4]);
  await checkModelGradients(graph, jitteredInputs(graph, 6, 2), "mixer table");
  // binary_bce false keeps the configured loss (here the trainer's cross-entropy, two logits).
  const ce = mixerGraph(3, info, { token_group: 2, width: 4, binary_bce: false });
  assert.strictEqual(ce.mainLoss?.tensor.producer?.op, "softmax_cross_entropy");
});

Deno.test("mixer: a patch size that does not cut the image says which do", () => {
  assert.throws(
    () =>
      mixerGraph(2, { features: 784, classes: 10, image: { channels: 1, height: 28, width: 28 } }, {
        patch_size: 5,
      }),
    /mixer: patch_size 5 does not cut the 28×28 images evenly; use one of 1, 2, 4, 7, 14, 28/,
  );
});

/** Trains `values` and returns the result with the first and last windows' training losses. */
async function trainLosses(values: Config, registry = builtinRegistry()) {
  const { gpu, kernels } = await testGpu();
  const config = resolveConfig(registry, [{ source: "test", values }]);
  const outDir = await Deno.makeTempDir({ prefix: "mixer-" });
  const losses: number[] = [];
  try {
    const result = await train({
      gpu,
      kernels,
      registry,
      config,
      outDir,
      events: { window: (w) => losses.push(w.loss) },
    });
    return { result, first: losses[0]!, last: losses[losses.length - 1]! };
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
}

Deno.test("mixer (c): trains on 8×8 images (4 patches of 4×4): the loss falls 3× and the test accuracy is ≥ 0.9", async () => {
  const registry = builtinRegistry();
  registry.register({
    ...syntheticDataset,
    name: "synthetic-images",
    async load(config) {
      const splits = await syntheticDataset.load(config);
      return { ...splits, info: { ...splits.info, image: { channels: 1, height: 8, width: 8 } } };
    },
  });
  const { result, first, last } = await trainLosses({
    dataset: "synthetic-images",
    synthetic_features: 64,
    synthetic_classes: 4,
    synthetic_train: 256,
    synthetic_test: 128,
    model: "mixer",
    patch_size: 4,
    width: 16,
    depth: 2,
    drop_path: 0.1,
    dropout: 0.05,
    batch_size: 16,
    epochs: 3,
    lr: 3e-3,
    log_every: 4,
    seed: 2,
  }, registry);
  assert.ok(last < first / 3, `loss ${first} → ${last}`);
  assert.ok(result.test_accuracy >= 0.9, `test accuracy ${result.test_accuracy}`);
});

Deno.test("mixer (c): trains on a CSV the test writes (a product, a sine and a category; BCE; pairs of features a token): the loss falls 1.5× and the test accuracy is ≥ 0.8", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mixer-csv-" });
  try {
    const path = join(dir, "table.csv");
    await Deno.writeTextFile(path, tabularCsv(1500, 5));
    const { result, first, last } = await trainLosses({
      dataset: "csv",
      data: path,
      model: "mixer",
      token_group: 2,
      width: 16,
      depth: 2,
      batch_size: 32,
      epochs: 6,
      lr: 3e-3,
      log_every: 8,
      seed: 1,
    });
    assert.ok(last < first / 1.5, `loss ${first} → ${last}`);
    assert.ok(result.test_accuracy >= 0.8, `test accuracy ${result.test_accuracy}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
