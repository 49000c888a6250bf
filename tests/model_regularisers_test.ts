/**
 * The regularisers of the built-in models: `mlp` and `bottleneck-mlp` with dropout, alpha dropout
 * with SELU and LeCun-normal initialisation (bottleneck-mlp's `block selu`, no LayerNorm), and
 * stochastic depth rising linearly over depth — the graphs they build, and that they train.
 */

import assert from "node:assert";
import { Graph } from "../core/graph/graph.ts";
import { resolveConfig } from "../core/train/config.ts";
import { train } from "../core/train/trainer.ts";
import type { Config } from "../core/train/registry.ts";
import { builtinRegistry } from "../plugins/mod.ts";
import { testGpu } from "./helpers/gpu.ts";

const INFO = { features: 12, classes: 3 };

/** The graph a model plugin builds for `values` (resolved like a run's config). */
function graphOf(values: Config): Graph {
  const registry = builtinRegistry();
  const config = resolveConfig(registry, [{
    source: "test",
    values: { dataset: "synthetic", ...values },
  }]);
  const g = new Graph(4);
  registry.get("model", String(config.model)).build(g, g.input("x", INFO.features), config, INFO);
  return g;
}

Deno.test("bottleneck-mlp: drop_path rises linearly over the blocks, dropout follows each hidden activation", () => {
  const g = graphOf({ model: "bottleneck-mlp", depth: 3, width: 8, drop_path: 0.2, dropout: 0.1 });
  // Block 0's rate is 0 (no op), then 0.1 and 0.2.
  assert.deepStrictEqual(g.nodes.filter((n) => n.op === "drop_path").map((n) => n.attrs.p), [
    0.1,
    0.2,
  ]);
  const drops = g.nodes.filter((n) => n.op === "dropout");
  assert.deepStrictEqual(drops.map((n) => [n.attrs.p, n.attrs.alpha]), [
    [0.1, false],
    [0.1, false],
    [0.1, false],
  ]);
  // Each dropout reads its block's first linear (the GELU is fused into it).
  for (const d of drops) assert.strictEqual(d.inputs[0]!.producer?.attrs.activation, "gelu");
  // The default block is the paper's: unchanged names, Kaiming-uniform init.
  const plain = graphOf({ model: "bottleneck-mlp", depth: 2, width: 8 });
  assert.ok(plain.params.some((p) => p.name === "layernorms.1.weight"));
  assert.ok(!plain.nodes.some((n) => n.op === "drop_path" || n.op === "dropout"));
  assert.deepStrictEqual(plain.params.find((p) => p.name === "blocks.0.block.0.weight")!.init, {
    kind: "uniform",
    bound: 1 / Math.sqrt(8),
  });
});

Deno.test("bottleneck-mlp block selu: no LayerNorm, SELU, alpha dropout, LeCun-normal weights and zero biases", () => {
  const g = graphOf({
    model: "bottleneck-mlp",
    depth: 2,
    width: 8,
    expansion: 2,
    block: "selu",
    dropout: 0.05,
  });
  assert.ok(!g.params.some((p) => p.name.startsWith("layernorms")), "a SELU block has no norm");
  assert.ok(!g.nodes.some((n) => n.op === "layernorm"));
  const acts = g.nodes.filter((n) => n.op === "linear").map((n) => n.attrs.activation);
  assert.deepStrictEqual(acts, ["identity", "selu", "identity", "selu", "identity", "identity"]);
  assert.deepStrictEqual(
    g.nodes.filter((n) => n.op === "dropout").map((n) => n.attrs.alpha),
    [true, true],
  );
  const init = (name: string) => g.params.find((p) => p.name === name)!.init;
  assert.deepStrictEqual(init("linear_in.weight"), { kind: "normal", std: 1 / Math.sqrt(12) });
  assert.deepStrictEqual(init("blocks.1.block.2.weight"), { kind: "normal", std: 1 / 4 });
  assert.deepStrictEqual(init("blocks.1.block.2.bias"), { kind: "zeros" });
  // init may be set against the default.
  const kaiming = graphOf({
    model: "bottleneck-mlp",
    depth: 1,
    width: 8,
    block: "selu",
    init: "kaiming-uniform",
  });
  assert.strictEqual(kaiming.params[0]!.init.kind, "uniform");
  assert.throws(
    () => graphOf({ model: "bottleneck-mlp", block: "relu" }),
    /test: key "block" must be one of "prenorm-gelu", "selu", got "relu"/,
  );
});

Deno.test("mlp: selu gets alpha dropout and LeCun-normal init by default; other activations Kaiming-uniform", () => {
  const selu = graphOf({ model: "mlp", widths: "10,6", activation: "selu", dropout: 0.1 });
  assert.deepStrictEqual(selu.params.map((p) => p.init.kind), [
    "normal",
    "zeros",
    "normal",
    "zeros",
    "normal",
    "zeros",
  ]);
  assert.ok(selu.nodes.filter((n) => n.op === "dropout").every((n) => n.attrs.alpha === true));
  const relu = graphOf({ model: "mlp", widths: "10", activation: "relu", dropout: 0.1 });
  assert.ok(relu.params.every((p) => p.init.kind === "uniform"));
  assert.ok(relu.nodes.filter((n) => n.op === "dropout").every((n) => n.attrs.alpha === false));
  const lecunRelu = graphOf({ model: "mlp", widths: "10", init: "lecun-normal" });
  assert.strictEqual(lecunRelu.params[0]!.init.kind, "normal");
});

Deno.test("bottleneck-mlp trains the synthetic task with each regulariser: dropout, drop_path, the SELU block", async () => {
  const { gpu, kernels } = await testGpu();
  for (
    const values of [
      { dropout: 0.1, drop_path: 0.3 },
      { block: "selu", dropout: 0.05, drop_path: 0.2 },
    ]
  ) {
    const registry = builtinRegistry();
    const config = resolveConfig(registry, [{
      source: "test",
      values: {
        dataset: "synthetic",
        synthetic_features: 16,
        synthetic_classes: 4,
        synthetic_train: 256,
        synthetic_test: 64,
        model: "bottleneck-mlp",
        depth: 3,
        width: 16,
        expansion: 2,
        batch_size: 16,
        epochs: 3,
        lr: 0.01,
        seed: 3,
        ...values,
      },
    }]);
    const outDir = await Deno.makeTempDir({ prefix: "regularisers-" });
    const result = await train({ gpu, kernels, registry, config, outDir });
    assert.ok(
      result.test_accuracy >= 0.9,
      `${JSON.stringify(values)}: test accuracy ${result.test_accuracy}`,
    );
    await Deno.remove(outDir, { recursive: true });
  }
});
