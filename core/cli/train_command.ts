/**
 * `deno task train`: flags and `--config` → one flat config → a training run in its own
 * directory (config.json, metrics.jsonl, model.safetensors, curves.svg), with a progress bar and,
 * with `--json`, one JSON summary as the last stdout line.
 *
 * @module
 */

import $ from "dax";
import { join } from "@std/path";
import { Gpu } from "../gpu/device.ts";
import { KernelCache } from "../gpu/kernels.ts";
import { builtinRegistry } from "../../plugins/mod.ts";
import {
  pluginRecipes,
  PRESETS,
  resolveConfig,
  TRAIN_DEFAULTS,
  TRAIN_HELP,
} from "../train/config.ts";
import type { Config, Registry } from "../train/registry.ts";
import { type EpochRecord, trainBuilt, type TrainResult } from "../train/trainer.ts";
import { buildRun } from "../train/build.ts";
import { checkNewFolder, checkResume, clearRunFiles, finishedRun } from "./resume.ts";
import { readRunRecord, RunLock, writeRunRecord } from "./run_folder.ts";
import { parseFlags, readJson, runLayers, timestamp, userCwd, userPath } from "./args.ts";
import { loadPlugins, type PluginModule, resumePlugins } from "./plugins.ts";
import { RunFiles } from "./run_files.ts";
import { openTrainingGpu } from "./open_gpu.ts";
import { loadRunDataset, resolveDataPaths, saveRunDataset } from "./run_dataset.ts";

/** Config keys that are booleans: `--keep-best` alone means true. */
const BOOLEAN_KEYS = new Set(["keep_best"]);
const BOOLEAN_FLAGS = new Set(["json", "help", "overwrite", ...BOOLEAN_KEYS]);
/** Flags that are not config keys. */
const COMMAND_FLAGS = new Set(["config", "plugin", "resume"]);

function helpText(registry: Registry): string {
  const flag = (k: string) => `--${k.replaceAll("_", "-")}`;
  const lines = [
    "Usage: deno task train [flags]",
    "",
    "Trains a model; with no flags, the default BottleneckMLP on MNIST (preset mnist-cpu on a",
    "software adapter, mnist-gpu on a GPU). Every config key is a flag: --batch-size ↔ batch_size.",
    "",
    "Command flags:",
    "  --config FILE        JSON file of config keys (flags override it)",
    "  --plugin PATH|URL    load plugins from a module (repeatable)",
    "  --resume DIR         continue the run in DIR to its configured end (or to new --epochs)",
    "  --overwrite          reuse an --out folder that holds files (they are replaced)",
    "  --json               print one JSON summary as the last line",
    "  --help               this text",
    "",
    "Trainer keys (default):",
    ...Object.keys(TRAIN_DEFAULTS).map((k) =>
      `  ${flag(k).padEnd(20)} ${TRAIN_HELP[k] ?? ""} (${JSON.stringify(TRAIN_DEFAULTS[k])})`
    ),
    "",
    `Presets: ${
      Object.entries(PRESETS).map(([n, p]) => `${n} ${JSON.stringify(p)}`).join("\n         ")
    }`,
  ];
  for (const kind of ["model", "optimizer", "schedule", "dataset"] as const) {
    lines.push("", `${kind[0]!.toUpperCase()}${kind.slice(1)}s:`);
    for (const p of registry.list(kind)) {
      const keys = Object.entries(p.defaults).map(([k, v]) => `${flag(k)} ${JSON.stringify(v)}`)
        .join(", ");
      lines.push(
        `  ${p.name.padEnd(16)} ${p.description}${
          keys ? `\n  ${"".padEnd(16)} keys: ${keys}` : ""
        }`,
      );
    }
  }
  return lines.join("\n");
}

/** With EMAs: which weights the accuracy is of, and every set's test accuracy. */
function weightsNote(e: { weights?: string; evaluations?: EpochRecord["evaluations"] }): string {
  if (!e.evaluations) return "";
  const all = Object.entries(e.evaluations).map(([name, r]) =>
    `${name} ${(100 * r.test_accuracy).toFixed(2)}%`
  );
  return ` (${e.weights}; test acc ${all.join(", ")})`;
}

/** Runs the train command; returns the process exit code (130/143 after SIGINT/SIGTERM). */
export async function trainCommand(argv: string[]): Promise<number> {
  const pluginPaths: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--plugin" && argv[i + 1]) pluginPaths.push(argv[i + 1]!);
    else if (a.startsWith("--plugin=")) pluginPaths.push(a.slice("--plugin=".length));
  }
  const registry = builtinRegistry();
  const parsed = parseFlags(argv, BOOLEAN_FLAGS);
  if (parsed.booleans.has("help")) {
    await loadPlugins(pluginPaths, registry);
    console.log(helpText(registry));
    return 0;
  }
  if (parsed.positionals.length > 0) {
    throw new RangeError(`unexpected argument "${parsed.positionals[0]}"; flags start with --`);
  }
  const json = parsed.booleans.has("json");
  const log = (line: string) => (json ? console.error : console.log)(line);
  const one = (key: string) => parsed.values.get(key)?.at(-1);
  const resumeArg = one("resume");
  if (resumeArg !== undefined && resumeArg.trim() === "") {
    throw new RangeError("--resume needs the folder of a run to continue, got an empty path");
  }
  const resumeDir = resumeArg ? userPath(resumeArg) : undefined;
  const record = resumeDir ? await readRunRecord(resumeDir) : undefined;
  if (resumeDir && parsed.values.has("out")) {
    throw new RangeError(
      `--out cannot move a resumed run: it continues in ${resumeDir} (copy the folder to move it)`,
    );
  }
  const checkpointPath = resumeDir ? join(resumeDir, "model.safetensors") : undefined;
  if (checkpointPath && !(await Deno.stat(checkpointPath).then(() => true, () => false))) {
    throw new Error(
      `--resume ${resumeDir}: the run was stopped before its first checkpoint (no model.safetensors), so there is nothing to continue; start it again with --out ${resumeDir} --overwrite`,
    );
  }

  const opened = await openTrainingGpu("training", log);
  if (!(opened instanceof Gpu)) return opened.exitCode;
  const gpu = opened;
  const kernels = new KernelCache(gpu);
  // A resumed run loads the plugin modules it was trained with (checked to be unchanged).
  const modulePaths = record
    ? await resumePlugins(
      record.plugins as PluginModule[] | undefined,
      pluginPaths,
      resumeDir!,
      log,
    )
    : pluginPaths;
  const pluginModules = await loadPlugins(modulePaths, registry, kernels);

  const layers: { source: string; values: Config }[] = [];
  if (record) layers.push({ source: `--resume ${resumeDir}/config.json`, values: record.config });
  if (one("config")) {
    layers.push({
      source: `--config ${one("config")}`,
      values: await readJson(userPath(one("config")!), "--config"),
    });
  }
  const raw: Config = {};
  for (const [key, values] of parsed.values) if (!COMMAND_FLAGS.has(key)) raw[key] = values.at(-1);
  for (const key of parsed.booleans) if (BOOLEAN_KEYS.has(key)) raw[key] = true;
  const run = runLayers(gpu.report.fallback, layers, raw);
  // A resumed run keeps its own recipe (the saved config already holds it).
  const recipe = record ? undefined : run.recipe;
  const config = resolveConfig(registry, run.layers);
  resolveDataPaths(registry, config);
  if (record) checkResume(registry, record, config, resumeDir!);

  const outDir = resumeDir ?? userPath(config.out ? String(config.out) : join("runs", timestamp()));
  const overwrite = parsed.booleans.has("overwrite");
  if (!resumeDir) await checkNewFolder(outDir, overwrite);
  // The data load (and fail) before anything is written.
  const dataset = await loadRunDataset(registry, config, resumeDir);
  log(`adapter: ${gpu.report.description}${gpu.report.fallback ? " (software adapter)" : ""}`);
  log(
    recipe
      ? `recipe: preset ${recipe} ${JSON.stringify(PRESETS[recipe])} (${
        gpu.report.fallback ? "software adapter: finishes in minutes on CPU" : "GPU"
      }); flags override it`
      : `recipe: ${record ? `as in ${resumeDir}/config.json` : "as configured"}`,
  );
  const recipes = pluginRecipes(registry, config);
  for (const r of recipes) {
    log(`${r.source}: ${JSON.stringify(r.values)} (presets, --config and flags override it)`);
  }

  // Everything is checked before anything is written: the run is built (data, model, plan,
  // optimizer, checkpoint), and only then the folder is locked and its files written.
  const built = await buildRun({ gpu, kernels, registry, config, dataset });
  let lock: RunLock | undefined;
  let files: RunFiles | undefined;
  const controller = new AbortController();
  let signal: "SIGINT" | "SIGTERM" | undefined;
  const onSignal = (name: "SIGINT" | "SIGTERM") => () => {
    if (controller.signal.aborted) Deno.exit(name === "SIGINT" ? 130 : 143);
    signal = name;
    log(
      `\ninterrupted (${name}): stopping after the current steps and writing a checkpoint (Ctrl-C again to quit now)`,
    );
    controller.abort();
  };
  const handlers = { SIGINT: onSignal("SIGINT"), SIGTERM: onSignal("SIGTERM") } as const;
  for (const [name, h] of Object.entries(handlers)) Deno.addSignalListener(name as Deno.Signal, h);
  let progress: ReturnType<typeof $.progress> | undefined;
  let result: TrainResult;
  try {
    const finished = record ? await finishedRun(built, checkpointPath!) : undefined;
    if (finished) {
      built.dispose();
      log(finished.message);
      if (json) console.log(JSON.stringify(finished.summary));
      gpu.destroy();
      return 0;
    }
    result = await trainBuilt(built, {
      gpu,
      kernels,
      registry,
      config,
      dataset,
      outDir,
      signal: controller.signal,
      resumeFrom: checkpointPath,
      async ready() {
        lock = await RunLock.acquire(outDir, "deno task train", log);
        if (!resumeDir) {
          // Under the lock: another run may have started here since the first check.
          await checkNewFolder(outDir, overwrite);
          if (overwrite) await clearRunFiles(outDir);
        }
        await writeRunRecord(outDir, {
          ...(record ?? {}),
          config,
          plugins: pluginModules,
          ...(record ? {} : {
            recipe: recipe ?? null,
            plugin_recipes: Object.fromEntries(recipes.map((r) => [r.source, r.values])),
            adapter: gpu.report.description,
            fallback_adapter: gpu.report.fallback,
            cwd: userCwd(),
          }),
        });
        files = await RunFiles.open(outDir, config);
        if (!resumeDir) await saveRunDataset(outDir, config, dataset);
      },
      events: {
        start(info) {
          const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
          log(
            `model: ${config.model} ${config.arch || ""} — ${
              info.parameters.toLocaleString("en")
            } parameters`,
          );
          log(
            `memory: ${Object.entries(info.memory).map(([k, v]) => `${k} ${mib(v)}`).join(", ")}`,
          );
          log(
            `data: ${info.trainSamples} train, ${info.valSamples} validation, ${info.testSamples} test; ${info.stepsPerEpoch} steps/epoch, ${info.totalSteps} steps`,
          );
          if (info.resumedAt) {
            log(`resuming at epoch ${info.resumedAt.epoch + 1}, step ${info.resumedAt.step}`);
          }
          log(`run directory: ${outDir}`);
          // The bar redraws in place; in a log (not a terminal) the epoch lines say enough.
          if (Deno.stderr.isTerminal()) {
            progress = $.progress("train", { length: info.totalSteps });
            progress.position(info.resumedAt?.step ?? 0);
          }
        },
        window(w) {
          files?.window(w);
          progress?.position(w.step);
          progress?.message(
            `epoch ${w.epoch + 1} step ${w.step}/${w.totalSteps} loss ${w.loss.toFixed(4)} ${
              w.samplesPerSec.toFixed(0)
            } samples/s ETA ${Math.round(w.etaSeconds)}s`,
          );
        },
        async epoch(e: EpochRecord) {
          await files?.epoch(e);
          log(
            `epoch ${e.epoch}: train loss ${e.train_loss?.toFixed(4)}, ${
              e.val_accuracy === null ? "" : `val acc ${(100 * e.val_accuracy).toFixed(2)}%, `
            }test loss ${e.test_loss.toFixed(4)}, test acc ${(100 * e.test_accuracy).toFixed(2)}%${
              weightsNote(e)
            }, ${e.samples_per_sec.toFixed(0)} samples/s`,
          );
        },
      },
    });
  } finally {
    progress?.finish();
    for (const [name, h] of Object.entries(handlers)) {
      Deno.removeSignalListener(name as Deno.Signal, h);
    }
    await files?.close();
    lock?.release();
  }
  log(
    `${result.status}: test accuracy ${(100 * result.test_accuracy).toFixed(2)}%${
      weightsNote(result)
    } in ${result.seconds.toFixed(1)} s; files in ${outDir}`,
  );
  if (json) console.log(JSON.stringify(result));
  gpu.destroy();
  return signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : 0;
}
