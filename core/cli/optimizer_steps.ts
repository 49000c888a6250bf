/**
 * The step time of the research optimizers against their bases, interleaved in one process
 * ({@link stepTimes}: every measurement encodes `--steps` steps in one submission, the runs take
 * turns `--repeats` times, medians kept), so load from elsewhere on a shared machine falls on all
 * alike: `sam` (over its default base `adamw`) against `adamw`, `ssam` against `sam`, and
 * `noisy-adam` against `adamw`, each with its own plugin defaults and recipe on this adapter's
 * default model and batch, data of MNIST's shape resident on the GPU. `deno task bench` times SAM
 * over adam the same way; this is its part for the optimizers' own defaults. Never used in tests.
 *
 * ```sh
 * deno run -A core/cli/optimizer_steps.ts [--steps 20] [--repeats 5]
 * ```
 *
 * @module
 */

import { Gpu } from "../gpu/device.ts";
import { KernelCache } from "../gpu/kernels.ts";
import { builtinRegistry } from "../../plugins/mod.ts";
import { resolveConfig } from "../train/config.ts";
import { parseFlags, runLayers } from "./args.ts";
import { stepTimes } from "../bench/step_time.ts";

const parsed = parseFlags(Deno.args, new Set());
const count = (name: string, fallback: number) => {
  const v = Number(parsed.values.get(name)?.at(-1) ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`--${name} must be an integer ≥ 1`);
  return v;
};
const steps = count("steps", 20);
const repeats = count("repeats", 5);

const gpu = await Gpu.open();
const kernels = new KernelCache(gpu);
const registry = builtinRegistry();
const configOf = (optimizer: string) => {
  // The default recipe of this adapter (mnist-cpu or mnist-gpu), as `deno task train` has it.
  const { layers } = runLayers(gpu.report.fallback, [], { optimizer });
  const preset = resolveConfig(registry, layers);
  return resolveConfig(registry, [...layers, {
    source: "optimizer_steps",
    values: {
      dataset: "synthetic",
      synthetic_features: 784,
      synthetic_classes: 10,
      synthetic_train: Number(preset.batch_size) * (steps + 1),
      synthetic_test: Number(preset.batch_size),
      epochs: 1,
    },
  }]);
};
const names = ["adamw", "sam", "ssam", "noisy-adam"];
const configs = Object.fromEntries(names.map((n) => [n, configOf(n)]));
const t = await stepTimes({ gpu, kernels, registry, configs, steps, repeats });
const ms = (name: string) => 1000 * t.step[name]!;
console.log(JSON.stringify({
  adapter: gpu.report.description,
  model: `${configs.adamw!.model} ${configs.adamw!.arch}`,
  batch: configs.adamw!.batch_size,
  steps,
  repeats,
  step_ms: Object.fromEntries(names.map((n) => [n, ms(n)])),
  "sam / adamw": ms("sam") / ms("adamw"),
  "ssam / sam": ms("ssam") / ms("sam"),
  "noisy-adam / adamw": ms("noisy-adam") / ms("adamw"),
  ssam_mask_update_ms: 1000 * t.periodic.ssam!,
}));
gpu.destroy();
