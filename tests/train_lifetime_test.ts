/**
 * Resource lifetimes: a run owns everything it allocates (in its own GPU scope) and frees it on
 * every way out — done, diverged, failed while building, interrupted — so a search of 20 trials in
 * one process ends with exactly the bytes it started with. The device layer counts live bytes.
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert";
import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import { DivergenceError, train } from "../core/train/trainer.ts";
import { runTrial } from "../core/cli/search_trial.ts";
import {
  JournalMemoryBackend,
  JournalStorage,
  parseSearchSpace,
  RandomSampler,
  Study,
} from "../core/search/mod.ts";
import type { Config } from "../core/train/registry.ts";
import { testGpu } from "./helpers/gpu.ts";

const BASE: Config = {
  dataset: "synthetic",
  synthetic_features: 16,
  synthetic_classes: 3,
  synthetic_train: 96,
  synthetic_test: 24,
  model: "mlp",
  widths: "8",
  batch_size: 16,
  epochs: 2,
  log_every: 2,
  dropout: 0.1,
};

Deno.test("lifetimes: the device counts live bytes; a scope frees what was made through it", async () => {
  const { gpu } = await testGpu();
  const before = gpu.allocatedBytes;
  const scope = gpu.scope("test scope");
  const inner = scope.scope("inner");
  scope.storage("a", 1024);
  inner.storage("b", 4096);
  const c = scope.storage("c", 256);
  strictEqual(gpu.allocatedBytes - before, 1024 + 4096 + 256);
  strictEqual(scope.ownedBytes, 1024 + 4096 + 256);
  c.destroy();
  c.destroy();
  strictEqual(gpu.allocatedBytes - before, 1024 + 4096, "a destroyed buffer counts once");
  inner.dispose();
  strictEqual(gpu.allocatedBytes - before, 1024);
  scope.dispose();
  strictEqual(gpu.allocatedBytes, before);
  ok(/disposed/.test((() => {
    try {
      scope.storage("late", 16);
      return "";
    } catch (e) {
      return (e as Error).message;
    }
  })()));
});

Deno.test("lifetimes: a search of 20 trials in one process ends with the bytes it started with", async () => {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  const study = await Study.open(new JournalStorage(new JournalMemoryBackend()), {
    name: "lifetimes",
    direction: "maximize",
    sampler: new RandomSampler(7),
    pruner: null,
  });
  // lr up to 300 makes some trials diverge: those end through the error path.
  const space = parseSearchSpace({
    lr: { type: "float", low: 1e-3, high: 300, log: true },
    widths: { type: "categorical", choices: ["4", "8", "12,6"] },
    optimizer: { type: "categorical", choices: ["adamw", "sgd", "lamb"] },
  });
  const root = await Deno.makeTempDir({ prefix: "lifetimes-" });
  const start = gpu.allocatedBytes;
  const after: number[] = [];
  const outcomes: string[] = [];
  for (let i = 0; i < 20; i++) {
    const trial = await study.ask(space);
    outcomes.push(
      await runTrial({
        gpu,
        kernels,
        registry,
        layers: [{ source: "test", values: BASE }],
        valSplit: 0.25,
        study,
        studyName: "lifetimes",
        trial,
        metric: "val_accuracy",
        outDir: `${root}/trial-${trial.number}`,
      }).then((o) => o.line),
    );
    after.push(gpu.allocatedBytes);
  }
  ok(outcomes.some((o) => o.startsWith("COMPLETE")), outcomes.join("\n"));
  ok(outcomes.some((o) => o.startsWith("FAIL")), `some trials diverge: ${outcomes.join("\n")}`);
  deepStrictEqual(after, Array(20).fill(after[0]), "bytes after each trial");
  strictEqual(after[0], start, "and nothing of a trial is left after it");
  await Deno.remove(root, { recursive: true });
});

Deno.test("lifetimes: divergence, a failed build and an interrupted run free what they made", async () => {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  const dir = await Deno.makeTempDir({ prefix: "lifetimes-" });
  const start = gpu.allocatedBytes;
  const config = (values: Config) =>
    resolveConfig(registry, [{ source: "test", values: { ...BASE, ...values } }]);
  await rejects(
    train({ gpu, kernels, registry, config: config({ lr: 1e7, optimizer: "sgd" }), outDir: dir }),
    DivergenceError,
  );
  strictEqual(gpu.allocatedBytes, start, "after divergence");
  // The data is uploaded before the model is built: a model that cannot be built fails after it.
  await rejects(
    train({ gpu, kernels, registry, config: config({ widths: "8,x" }), outDir: dir }),
    /widths/,
  );
  strictEqual(gpu.allocatedBytes, start, "after a failed build");
  const controller = new AbortController();
  controller.abort();
  const result = await train({
    gpu,
    kernels,
    registry,
    config: config({}),
    outDir: dir,
    signal: controller.signal,
  });
  strictEqual(result.status, "interrupted");
  strictEqual(gpu.allocatedBytes, start, "after an interrupted run");
  await Deno.remove(dir, { recursive: true });
});
