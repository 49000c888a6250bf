/**
 * The training-step rate of two optimizers on the same model, batch and data shape, measured
 * interleaved in one process (A, B, A, B, …; the first pair warms up) so that load from elsewhere
 * on a shared machine falls on both alike: the ratio is what to read. Each optimizer keeps its
 * own plugin recipe (noisy-adam's edm2 schedule, weight decay 0), as `deno task train` gives it.
 * Data: synthetic samples of MNIST's shape, resident on the GPU like MNIST's. Never used in tests.
 *
 * ```sh
 * deno run -A core/bench/compare_steps.ts noisy-adam adamw [--repeats 7] [--steps 60]
 * ```
 *
 * @module
 */

import { Gpu } from "../gpu/device.ts";
import { KernelCache } from "../gpu/kernels.ts";
import { builtinRegistry } from "../../plugins/mod.ts";
import { resolveConfig } from "../train/config.ts";
import { train } from "../train/trainer.ts";
import { parseFlags, runLayers } from "../cli/args.ts";
import { median } from "./timing.ts";

const parsed = parseFlags(Deno.args, new Set());
const [a = "noisy-adam", b = "adamw"] = parsed.positionals;
const count = (name: string, fallback: number) => {
  const v = Number(parsed.values.get(name)?.at(-1) ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`--${name} must be an integer ≥ 1`);
  return v;
};
const repeats = count("repeats", 7);
const steps = count("steps", 60);

const gpu = await Gpu.open();
const kernels = new KernelCache(gpu);
const registry = builtinRegistry();
const configOf = (optimizer: string) => {
  // The default recipe of this adapter (mnist-cpu or mnist-gpu), as `deno task train` has it.
  const { layers } = runLayers(gpu.report.fallback, [], { optimizer });
  const preset = resolveConfig(registry, layers);
  return resolveConfig(registry, [...layers, {
    source: "compare_steps",
    values: {
      dataset: "synthetic",
      synthetic_features: 784,
      synthetic_classes: 10,
      synthetic_train: Number(preset.batch_size) * steps,
      synthetic_test: Number(preset.batch_size),
      epochs: 1,
      log_every: steps,
    },
  }]);
};
const configs = { [a]: configOf(a), [b]: configOf(b) };
const rates: Record<string, number[]> = { [a]: [], [b]: [] };
const outDir = await Deno.makeTempDir({ prefix: "compare-steps-" });
for (let r = 0; r <= repeats; r++) {
  for (const name of [a, b]) {
    const res = await train({ gpu, kernels, registry, config: configs[name]!, outDir });
    if (r > 0) rates[name]!.push(res.samples_per_sec);
  }
}
await Deno.remove(outDir, { recursive: true });
const batch = Number(configs[a]!.batch_size);
const summary = Object.fromEntries([a, b].map((name) => {
  const rate = median(rates[name]!);
  return [name, { samples_per_sec: rate, ms_per_step: 1000 * batch / rate, runs: rates[name] }];
}));
console.log(JSON.stringify({
  adapter: gpu.report.description,
  model: `${configs[a]!.model} ${configs[a]!.arch}`,
  batch,
  steps_per_run: steps,
  repeats,
  ...summary,
  [`${a} / ${b} time per step`]: median(rates[b]!) / median(rates[a]!),
}));
gpu.destroy();
