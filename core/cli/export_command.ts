/**
 * `deno task export --run DIR [--out FILE]`: a run's target weights as their own safetensors file,
 * named and shaped like the PyTorch module's `state_dict` — for a hypernetwork the weights its
 * generator computes from the checkpoint (core/train/export.ts), for any other model its
 * parameters without optimizer state. Default `--out`: `DIR/exported.safetensors`; the path is
 * printed.
 *
 * @module
 */

import { join } from "@std/path";
import { Gpu } from "../gpu/device.ts";
import { KernelCache } from "../gpu/kernels.ts";
import { builtinRegistry } from "../../plugins/mod.ts";
import { resolveConfig } from "../train/config.ts";
import { exportWeights } from "../train/export.ts";
import { readSafetensors, type Tensor, writeSafetensorsAtomic } from "../io/safetensors.ts";
import { parseFlags, readJson, userPath } from "./args.ts";
import { loadPlugins, type PluginModule, resumePlugins } from "./plugins.ts";
import { loadRunDataset } from "./run_dataset.ts";

const HELP = `Usage: deno task export --run DIR [--out FILE]

Writes the target weights of the run in DIR as one safetensors file, named and shaped like the
PyTorch module's state_dict (e.g. conv1.weight [out, in, 3, 3], fc.weight [out, in]): for the
hypernet model the weights its generator computes from the checkpoint, for other models their
parameters (no optimizer state).

  --run DIR      the run folder (config.json and model.safetensors)
  --out FILE     where to write (default DIR/exported.safetensors)
  --plugin PATH  plugin modules (default: those the run was trained with)`;

/** The format written into the exported file's `__metadata__.format`. */
export const EXPORT_FORMAT = "webgpu-trainer-export/1";

/** Runs the export command; returns the process exit code. */
export async function exportCommand(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, new Set(["help"]));
  if (parsed.booleans.has("help")) {
    console.log(HELP);
    return 0;
  }
  for (const key of parsed.values.keys()) {
    if (!["run", "out", "plugin"].includes(key)) {
      throw new RangeError(`export: unknown flag --${key.replaceAll("_", "-")} (see --help)`);
    }
  }
  if (parsed.positionals.length > 0) {
    throw new RangeError(`unexpected argument "${parsed.positionals[0]}"; flags start with --`);
  }
  const runArg = parsed.values.get("run")?.at(-1);
  if (!runArg) throw new RangeError("export needs --run DIR, the folder of a training run");
  const dir = userPath(runArg);
  const record = await readJson(join(dir, "config.json"), "--run");
  if (typeof record.config !== "object" || record.config === null) {
    throw new RangeError(`--run ${dir}/config.json: no "config" object; is it a run folder?`);
  }
  const checkpointPath = join(dir, "model.safetensors");
  const checkpoint = await readSafetensors(checkpointPath).catch((e: Error) => {
    throw new Error(
      `--run ${dir}: cannot read model.safetensors (${e.message}); the run has no checkpoint yet`,
    );
  });
  const out = userPath(parsed.values.get("out")?.at(-1) ?? join(dir, "exported.safetensors"));

  const gpu = await Gpu.open();
  try {
    const kernels = new KernelCache(gpu);
    const registry = builtinRegistry();
    const modules = await resumePlugins(
      record.plugins as PluginModule[] | undefined,
      parsed.values.get("plugin") ?? [],
      dir,
      console.error,
    );
    await loadPlugins(modules, registry, kernels);
    const config = resolveConfig(registry, [
      { source: `--run ${dir}/config.json`, values: record.config as Record<string, unknown> },
    ]);
    // The model's shapes follow the data (features, image, classes), as in training.
    const dataset = await loadRunDataset(registry, config, dir);
    const loss = registry.get("loss", String(config.loss));
    const info = { ...dataset.info, outputs: loss.outputs?.(dataset.info) ?? dataset.info.classes };
    const weights = await exportWeights({
      gpu,
      kernels,
      registry,
      config,
      info,
      checkpoint: checkpoint.tensors,
      source: checkpointPath,
    });
    const tensors: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(weights)) {
      tensors[name] = { dtype: "F32", shape: t.shape, data: t.data };
    }
    await writeSafetensorsAtomic(out, tensors, {
      format: EXPORT_FORMAT,
      model: String(config.model),
      run: dir,
      step: checkpoint.metadata.step ?? "",
    });
    const values = Object.values(weights).reduce((n, t) => n + t.data.length, 0);
    console.log(
      `exported ${Object.keys(weights).length} tensors (${
        values.toLocaleString("en")
      } values) of ${config.model} to ${out}`,
    );
    return 0;
  } finally {
    gpu.destroy();
  }
}
