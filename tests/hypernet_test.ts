/**
 * The `hypernet` model: (a) the generator's gradient — the only parameters — against central
 * finite differences of the float64 graph interpreter through the whole target (CNN with
 * convolutions, ReLU, max-pooling and the head; and an MLP), for both generators; (b) the
 * generated weights start at PyTorch's init scale; (c) the CNN target trains on a small image set
 * (its loss falls ≥ 3×), and `exportWeights` gives exactly the generator's output computed on the
 * CPU (float64 interpreter over the checkpoint), which PyTorch loads into the equivalent
 * `nn.Module` with `strict=True` and which there gives the interpreter's logits; (d) the CLI:
 * `deno task export --run DIR` after `deno task train --model hypernet --target mlp`.
 *
 * Tolerances: gradients as tests/model_grad_test.ts (f32 sums of ≤ 100 terms against float64:
 * 3e-5 + 2e-3·|fd|). Exported weights against the interpreter: one f32 matmul of ≤ 65 terms and
 * a scale, ~1e-7 relative: atol 1e-6 + rtol 1e-5. Logits in torch (float64 on the exported f32
 * weights) against the interpreter (float64 on the unrounded generated weights): apart by the
 * weights' f32 rounding (~1e-7 relative, logits ~1): atol 1e-4 + rtol 1e-4.
 */

import { ok, strictEqual } from "node:assert";
import { join } from "node:path";
import { Graph } from "../core/graph/graph.ts";
import * as nn from "../core/graph/nn.ts";
import { ParamLayout } from "../core/graph/params.ts";
import { seededRandom } from "../core/util/random.ts";
import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import { train } from "../core/train/trainer.ts";
import { exportWeights } from "../core/train/export.ts";
import { readSafetensors, toFloat32 } from "../core/io/safetensors.ts";
import type { Config, DatasetInfo, DatasetPlugin } from "../core/train/registry.ts";
import { generateTargetWeights, hypernet, targetTensors } from "../plugins/models/hypernet.ts";
import { interpret } from "./reference/graph_interpreter.ts";
import { checkModelGradients, jitteredInputs } from "./helpers/model_grads.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { runTorch } from "./helpers/torch.ts";
import { testGpu } from "./helpers/gpu.ts";
import { runCli } from "./helpers/cli.ts";

const SMALL: Config = {
  channels: "2",
  hidden: "5",
  chunk: 8,
  z_dim: 3,
  gen_width: 6,
  gen_depth: 1,
  gen_activation: "tanh",
};

const IMAGE_INFO: DatasetInfo = {
  features: 42,
  classes: 3,
  image: { channels: 1, height: 6, width: 7 },
  outputs: 3,
};

function hypernetGraph(config: Config, info: DatasetInfo, batch: number): Graph {
  const g = new Graph(batch);
  const logits = hypernet.build(g, g.input("x", info.features), config, info);
  const { loss, correct } = nn.labelLoss(g, "cross-entropy", logits);
  g.addLoss(loss, 1, { main: true, correct });
  return g;
}

Deno.test("hypernet: the generator's gradient through the target against finite differences (CNN and MLP, both generators)", async () => {
  const cases: [string, Config, DatasetInfo][] = [
    ["cnn / embedding", { ...SMALL, target: "cnn", generator: "embedding" }, IMAGE_INFO],
    ["cnn / index-mlp", { ...SMALL, target: "cnn", generator: "index-mlp" }, IMAGE_INFO],
    ["mlp / embedding", { ...SMALL, target: "mlp", generator: "embedding" }, {
      features: 6,
      classes: 3,
      outputs: 3,
    }],
  ];
  for (const [label, config, info] of cases) {
    const graph = hypernetGraph(config, info, 3);
    // Only the generator has parameters: the target's weights are activations.
    ok(graph.params.every((p) => p.name === "embeddings" || p.name.startsWith("generator.")));
    // The generator's first layer gets a gradient through every generated weight.
    await checkModelGradients(graph, jitteredInputs(graph, 11, 3), label, {
      minGradient: 1e-3,
      gradientOf: "generator.0.weight",
    });
  }
});

Deno.test("hypernet: generated weights start at PyTorch's init scale, 1/√(3·fan_in) per tensor", () => {
  const info: DatasetInfo = {
    features: 784,
    classes: 10,
    image: { channels: 1, height: 28, width: 28 },
    outputs: 10,
  };
  for (const generator of ["embedding", "index-mlp"]) {
    const config = { ...hypernet.defaults, generator };
    const g = new Graph(1);
    g.input("x", 1);
    const weights = generateTargetWeights(g, config, info);
    const layout = new ParamLayout(g.params);
    const init = layout.initialValues(seededRandom(3));
    const params = new Map(
      layout.segments.map((s) => [
        s.param.name,
        Float64Array.from(init.subarray(s.offset, s.offset + s.size)),
      ]),
    );
    const values = interpret(g, { params, input: new Float64Array(1), labels: [] });
    for (const t of targetTensors(config, info)) {
      if (t.size < 200) continue; // too few values for a std within ±25 %
      const v = values.get(weights[t.name]!)!;
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
      const want = 1 / Math.sqrt(3 * t.fanIn);
      ok(
        std > 0.75 * want && std < 1.33 * want,
        `${generator} ${t.name}: std ${std.toFixed(4)}, PyTorch's init ${want.toFixed(4)}`,
      );
    }
  }
});

/** 8×8 one-channel images of 3 classes: a bright 3×3 square at the left, middle or right. */
const squares: DatasetPlugin = {
  kind: "dataset",
  name: "squares",
  description: "tiny images for the hypernet tests",
  defaults: {},
  load(config) {
    const random = seededRandom(Number(config.seed ?? 0) + 17);
    const split = (count: number) => {
      const samples = new Uint8Array(count * 64);
      const labels = new Uint8Array(count);
      for (let i = 0; i < count; i++) {
        const c = i % 3;
        labels[i] = c;
        const top = Math.floor(random() * 6);
        for (let p = 0; p < 64; p++) samples[i * 64 + p] = Math.floor(random() * 60);
        for (let y = top; y < top + 3; y++) {
          for (let x = 0; x < 3; x++) samples[i * 64 + y * 8 + c * 2 + x + (c === 2 ? 1 : 0)] = 250;
        }
      }
      return { samples, labels, count };
    };
    return Promise.resolve({
      info: { features: 64, classes: 3, image: { channels: 1, height: 8, width: 8 } },
      train: split(192),
      test: split(30),
      mean: [0.2],
      std: [0.3],
    });
  },
};

const TORCH_CNN = `
import json, sys, torch
from torch import nn
data = json.load(sys.stdin)
class CNN(nn.Module):
    def __init__(self, widths, channels, side, classes):
        super().__init__()
        for i, w in enumerate(widths):
            setattr(self, f"conv{i + 1}", nn.Conv2d(widths[i - 1] if i else channels, w, 3, padding=1))
            side //= 2
        self.widths = widths
        self.fc = nn.Linear(widths[-1] * side * side, classes)
    def forward(self, x):
        for i in range(len(self.widths)):
            x = torch.max_pool2d(torch.relu(getattr(self, f"conv{i + 1}")(x)), 2)
        return self.fc(torch.flatten(x, 1))
model = CNN(data["widths"], 1, data["side"], data["classes"]).double()
state = {k: torch.tensor(v["data"], dtype=torch.float64).reshape(v["shape"]) for k, v in data["state"].items()}
model.load_state_dict(state, strict=True)
x = torch.tensor(data["x"], dtype=torch.float64).reshape(-1, 1, data["side"], data["side"])
print(json.dumps(model(x).detach().flatten().tolist()))
`;

Deno.test("hypernet: the CNN target trains on small images; the exported weights are the generator's output and load into PyTorch's module", async () => {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  registry.register(squares);
  const config = resolveConfig(registry, [{
    source: "test",
    values: {
      dataset: "squares",
      model: "hypernet",
      channels: "3,4",
      chunk: 16,
      z_dim: 8,
      gen_width: 16,
      lr: 0.01,
      batch_size: 32,
      epochs: 6,
      log_every: 1,
      seed: 2,
    },
  }]);
  const dir = await Deno.makeTempDir({ prefix: "hypernet-" });
  try {
    const losses: number[] = [];
    const result = await train({
      gpu,
      kernels,
      registry,
      config,
      outDir: dir,
      events: { window: (w) => losses.push(w.loss) },
    });
    ok(
      losses.at(-1)! < losses[0]! / 3,
      `loss falls ≥ 3×: ${losses[0]!.toFixed(3)} → ${losses.at(-1)!.toFixed(3)}`,
    );
    ok(result.test_accuracy > 0.8, `test accuracy ${result.test_accuracy}`);

    const checkpoint = (await readSafetensors(join(dir, "model.safetensors"))).tensors;
    const info = { ...(await squares.load(config)).info, outputs: 3 };
    const exported = await exportWeights({
      gpu,
      kernels,
      registry,
      config,
      info,
      checkpoint,
      source: "test checkpoint",
    });
    strictEqual(
      Object.keys(exported).join(","),
      "conv1.weight,conv1.bias,conv2.weight,conv2.bias,fc.weight,fc.bias",
    );
    strictEqual(exported["conv2.weight"]!.shape.join(","), "4,3,3,3");
    strictEqual(exported["fc.weight"]!.shape.join(","), "3,16");

    // The generator on the CPU (float64) over the checkpoint's parameters.
    const g = hypernetGraph(config, info, 4);
    const params = new Map(
      g.params.map((p) => [p.name, Float64Array.from(toFloat32(checkpoint[p.name]!))]),
    );
    const x = Float64Array.from({ length: 4 * 64 }, (_, i) => Math.sin(i * 0.37) * 1.5);
    const values = interpret(g, { params, input: x, labels: [0, 1, 2, 0] });
    const gen = new Graph(1);
    gen.input("x", 1);
    const weights = generateTargetWeights(gen, config, info);
    const genValues = interpret(gen, { params, input: new Float64Array(1), labels: [] });
    for (const [name, t] of Object.entries(exported)) {
      assertClose(t.data, genValues.get(weights[name]!)!, {
        atol: 1e-6,
        rtol: 1e-5,
        label: `exported ${name}`,
      });
    }
    // PyTorch's module with the exported state_dict gives the interpreter's logits.
    const logits = values.get(g.mainLoss!.tensor.producer!.inputs[0]!)!;
    const torch = await runTorch(TORCH_CNN, {
      widths: [3, 4],
      side: 8,
      classes: 3,
      state: Object.fromEntries(
        Object.entries(exported).map(([k, t]) => [k, { shape: t.shape, data: Array.from(t.data) }]),
      ),
      x: Array.from(x),
    }, "torch CNN") as number[];
    // The interpreter ran on the exported weights' float64 values, rounded to f32 by export.
    assertClose(torch, logits, { atol: 1e-4, rtol: 1e-4, label: "torch logits" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const cli = ([command, ...args]: string[], cwd: string) => runCli(command!, args, cwd);

Deno.test("deno task export --run DIR after deno task train --model hypernet --target mlp: the generated state_dict", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "hypernet-cli-" });
  try {
    const trained = await cli([
      "train",
      "--dataset",
      "synthetic",
      "--model",
      "hypernet",
      "--target",
      "mlp",
      "--hidden",
      "12,7",
      "--generator",
      "index-mlp",
      "--gen-depth",
      "2",
      "--epochs",
      "1",
      "--batch-size",
      "32",
      "--out",
      "run",
    ], cwd);
    strictEqual(trained.code, 0, trained.stderr);
    const missing = await cli(["export"], cwd);
    strictEqual(missing.code, 1);
    ok(missing.stderr.includes("export needs --run DIR"), missing.stderr);
    const exported = await cli(["export", "--run", "run", "--out", "target.safetensors"], cwd);
    strictEqual(exported.code, 0, exported.stderr);
    ok(exported.stdout.includes("exported 6 tensors"), exported.stdout);
    const file = await readSafetensors(join(cwd, "target.safetensors"));
    const shapes = Object.entries(file.tensors).map(([k, t]) => `${k}:${t.shape.join("x")}`);
    strictEqual(
      shapes.join(" "),
      "layers.0.weight:12x32 layers.0.bias:12 layers.1.weight:7x12 layers.1.bias:7 head.weight:4x7 head.bias:4",
    );
    // The generator on the CPU over the run's checkpoint gives the same values.
    const checkpoint = (await readSafetensors(join(cwd, "run", "model.safetensors"))).tensors;
    const record = JSON.parse(await Deno.readTextFile(join(cwd, "run", "config.json")));
    const info: DatasetInfo = { features: 32, classes: 4, outputs: 4 };
    const g = new Graph(1);
    g.input("x", 1);
    const weights = generateTargetWeights(g, record.config, info);
    const params = new Map(
      g.params.map((p) => [p.name, Float64Array.from(toFloat32(checkpoint[p.name]!))]),
    );
    const values = interpret(g, { params, input: new Float64Array(1), labels: [] });
    for (const [name, t] of Object.entries(file.tensors)) {
      assertClose(toFloat32(t), values.get(weights[name]!)!, {
        atol: 1e-6,
        rtol: 1e-5,
        label: `exported ${name}`,
      });
    }
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
