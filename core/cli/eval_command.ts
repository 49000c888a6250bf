/**
 * `deno task eval --run DIR`: a trained run's checkpoint on its test split — clean accuracy and
 * loss, confusion matrix, per-class and macro F1 (AUROC for two classes, bits per token for text),
 * FGSM and PGD over ε grids (crafted on another run with `--adversarial-from`), test-time
 * augmentation, parameters, FLOPs and inference speed. A table on stdout (on stderr with
 * `--json`, whose last stdout line is one JSON object), and `robustness.svg` beside the run.
 *
 * @module
 */

import $ from "dax";
import { basename, join } from "@std/path";
import { Gpu, type Storage } from "../gpu/device.ts";
import { KernelCache } from "../gpu/kernels.ts";
import { builtinRegistry } from "../../plugins/mod.ts";
import type { Config, Registry } from "../train/registry.ts";
import {
  type EvalReport,
  evaluateRun,
  FGSM_GRID,
  PGD_GRID,
  type RunModel,
} from "../eval/evaluate.ts";
import { readWeights } from "../eval/model.ts";
import { robustnessSvg } from "../eval/chart.ts";
import { parseTta } from "../eval/views.ts";
import { evalWeightsOf, parseEma } from "../train/ema.ts";
import { parseFlags, userPath } from "./args.ts";
import { loadPlugins, type PluginModule, resumePlugins } from "./plugins.ts";
import { readRunRecord } from "./run_folder.ts";
import { openTrainingGpu } from "./open_gpu.ts";
import { loadRunDataset } from "./run_dataset.ts";

const BOOLEAN_FLAGS = new Set(["json", "help"]);
const VALUE_FLAGS = new Set([
  "run",
  "adversarial_from",
  "fgsm_eps",
  "pgd_eps",
  "pgd_steps",
  "pgd_step_ratio",
  "tta",
  "tta_shift",
  "precision",
  "batch_size",
  "samples",
  "speed_batch",
  "seed",
  "plugin",
  "weights",
]);

const HELP = `Usage: deno task eval --run DIR [flags]

Evaluates a run's model.safetensors on its test split, the model in evaluation mode.

  --run DIR               the run to evaluate (required)
  --adversarial-from DIR  craft FGSM/PGD on this run's model, evaluate them on --run's (transfer)
  --fgsm-eps LIST|none    FGSM radii in [0, 1] pixel units (default 0, 0.0125, …, 0.25)
  --pgd-eps LIST|none     PGD radii (default k·0.025/12, k = 0..11)
  --pgd-steps N           PGD iterations (5)
  --pgd-step-ratio R      PGD step size as a fraction of ε (0.5)
  --tta LIST|none         test-time views: flip, crop (default flip,crop on images)
  --tta-shift N           pixels a TTA crop is shifted by (2)
  --precision f32|f16     the evaluation's precision (default the run's)
  --batch-size N          rows per batch (default the run's batch size)
  --samples N             evaluate the first N test rows only (default all)
  --speed-batch N         batch of the throughput measurement (1024; 0 skips speed)
  --seed N                key of PGD's random starts (0)
  --weights plain|emaS    the weights evaluated: plain or an EMA of the run (default its --eval-weights)
  --plugin PATH           plugin modules (default those the run recorded)
  --json                  the last stdout line is one JSON object
`;

/** A comma-separated list of radii in [0, 1], or "none". */
export function parseEps(text: string, flag: string): number[] {
  if (text.trim() === "none" || text.trim() === "") return [];
  return text.split(",").map((s) => {
    const v = Number(s.trim());
    if (s.trim() === "" || !(v >= 0 && v <= 1)) {
      throw new RangeError(
        `${flag}: "${s.trim()}" is not a radius in [0, 1] pixel units; give a comma-separated list like 0,0.0125,0.025 or "none"`,
      );
    }
    return v;
  });
}

function intFlag(text: string | undefined, flag: string, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!Number.isInteger(v) || v < min) {
    throw new RangeError(`${flag} must be a whole number ≥ ${min}, got "${text}"`);
  }
  return v;
}

/** A run folder's config and weights; errors name the flag and the folder. */
async function readRun(
  dir: string,
  flag: string,
  registry: Registry,
  given: string[],
  log: (line: string) => void,
): Promise<{ config: Config; name: string; checkpoint: string }> {
  const record = await readRunRecord(dir).catch((e) => {
    throw new Error((e as Error).message.replace("--resume", flag));
  });
  const recorded = record.plugins as PluginModule[] | undefined;
  await loadPlugins(await resumePlugins(recorded, given, dir, log), registry);
  const path = join(dir, "model.safetensors");
  if (!(await Deno.stat(path).then(() => true, () => false))) {
    throw new Error(
      `${flag} ${dir}: no model.safetensors (the run stopped before its first checkpoint); train it first`,
    );
  }
  return { config: record.config, name: basename(dir), checkpoint: path };
}

/** Runs the eval command; returns the exit code. */
export async function evalCommand(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, BOOLEAN_FLAGS);
  if (parsed.booleans.has("help")) {
    console.log(HELP);
    return 0;
  }
  if (parsed.positionals.length > 0) {
    throw new RangeError(`unexpected argument "${parsed.positionals[0]}"; flags start with --`);
  }
  for (const key of parsed.values.keys()) {
    if (!VALUE_FLAGS.has(key)) {
      throw new RangeError(
        `unknown flag --${key.replaceAll("_", "-")} for deno task eval; see deno task eval --help`,
      );
    }
  }
  const json = parsed.booleans.has("json");
  const log = (line: string) => (json ? console.error : console.log)(line);
  const one = (key: string) => parsed.values.get(key)?.at(-1);
  const runArg = one("run");
  if (!runArg || runArg.trim() === "") {
    throw new RangeError("--run needs the folder of a trained run (deno task train --out DIR)");
  }
  const runDir = userPath(runArg);
  const fromArg = one("adversarial_from");
  const fromDir = fromArg ? userPath(fromArg) : undefined;
  const plugins = parsed.values.get("plugin") ?? [];

  const registry = builtinRegistry();
  const targetRun = await readRun(runDir, "--run", registry, plugins, log);
  const sourceRun = fromDir
    ? await readRun(fromDir, "--adversarial-from", registry, plugins, log)
    : undefined;
  const config: Config = targetRun.config;
  // The data load before anything is written; the run's fitted transform is reused.
  const dataset = await loadRunDataset(registry, config, runDir);
  const info = dataset.info;
  const image = info.image !== undefined;
  // The weights the run reported (its --eval-weights), unless --weights picks others.
  const weightsOf = (c: Config) =>
    evalWeightsOf(one("weights") ?? c.eval_weights ?? "plain", parseEma(c.ema));
  const model = async (r: typeof targetRun): Promise<RunModel> => ({
    config: r.config,
    name: r.name,
    weights: await readWeights(r.checkpoint, registry, r.config, info, weightsOf(r.config)),
  });
  const target = { model: await model(targetRun) };
  const source = sourceRun ? { model: await model(sourceRun) } : undefined;

  const precision = (one("precision") ?? String(config.precision ?? "f32")) as Storage;
  if (precision !== "f32" && precision !== "f16") {
    throw new RangeError(`--precision must be f32 or f16, got "${precision}"`);
  }
  const batch = intFlag(one("batch_size"), "--batch-size", Number(config.batch_size ?? 256), 1);
  const fgsm = parseEps(one("fgsm_eps") ?? (image ? FGSM_GRID.join(",") : "none"), "--fgsm-eps");
  const pgd = parseEps(one("pgd_eps") ?? (image ? PGD_GRID.join(",") : "none"), "--pgd-eps");
  const pgdSteps = intFlag(one("pgd_steps"), "--pgd-steps", 5, 1);
  const ratioText = one("pgd_step_ratio") ?? "0.5";
  const pgdStepRatio = Number(ratioText);
  if (!(pgdStepRatio > 0 && pgdStepRatio <= 1)) {
    throw new RangeError(`--pgd-step-ratio must be in (0, 1], got "${ratioText}"`);
  }
  const tta = parseTta(one("tta") ?? (image ? "flip,crop" : "none"));
  const ttaShift = intFlag(one("tta_shift"), "--tta-shift", 2, 1);
  const samples = intFlag(one("samples"), "--samples", 0, 1);
  const speedBatch = intFlag(one("speed_batch"), "--speed-batch", 1024, 0);
  const seed = intFlag(one("seed"), "--seed", 0, 0);

  const opened = await openTrainingGpu("evaluation", log);
  if (!(opened instanceof Gpu)) return opened.exitCode;
  const gpu = opened;
  try {
    const kernels = new KernelCache(gpu);
    log(`adapter: ${gpu.report.description}${gpu.report.fallback ? " (software adapter)" : ""}`);
    log(
      `evaluating ${runDir} (${config.model} on ${config.dataset}, ${
        weightsOf(config)
      } weights, ${precision}, batch ${batch})${
        source ? `, attacks crafted on ${fromDir} (${source.model.config.model})` : ""
      }`,
    );
    const started = performance.now();
    // The bar redraws in place; in a log (not a terminal) the summary says enough.
    const progress = Deno.stderr.isTerminal() ? $.progress("evaluate") : undefined;
    const report = await evaluateRun({
      gpu,
      kernels,
      registry,
      target: target.model,
      source: source?.model,
      dataset,
      batch,
      precision,
      attacks: { fgsm, pgd, pgdSteps, pgdStepRatio, seed },
      tta,
      ttaShift,
      samples,
      speedBatch: speedBatch > 0 ? speedBatch : undefined,
      onBatch: progress && ((done, total) => {
        progress.length(total);
        progress.position(done);
      }),
    }).finally(() => progress?.finish());
    const seconds = (performance.now() - started) / 1000;
    for (const line of reportLines(report, info.classes)) log(line);
    let chart: string | undefined;
    if (report.fgsm.length + report.pgd.length > 0) {
      const file = join(
        runDir,
        source ? `robustness-from-${source.model.name}.svg` : "robustness.svg",
      );
      await Deno.writeTextFile(
        file,
        robustnessSvg({
          title: `${config.model} on ${config.dataset}`,
          fgsm: report.fgsm,
          pgd: report.pgd,
          pgdSteps,
          source: source?.model.name,
          clean: report.test_accuracy,
        }),
      );
      chart = file;
    }
    log(`evaluated in ${seconds.toFixed(1)} s${chart ? `; chart ${chart}` : ""}`);
    if (json) {
      console.log(JSON.stringify({
        run: runDir,
        model: config.model,
        dataset: config.dataset,
        adapter: gpu.report.description,
        weights: weightsOf(config),
        seconds,
        ...report,
        ...(chart ? { chart } : {}),
      }));
    }
  } finally {
    gpu.destroy();
  }
  return 0;
}

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

/** The human-readable table of a report. */
export function reportLines(r: EvalReport, classes: number): string[] {
  const lines = [
    `clean: test accuracy ${pct(r.test_accuracy)}, test loss ${r.test_loss.toFixed(4)}${
      r.bits_per_token !== undefined ? ` (${r.bits_per_token.toFixed(4)} bits/token)` : ""
    } over ${r.samples} samples`,
  ];
  if (r.tta) {
    lines.push(
      `TTA (${r.tta.kinds.join("+")}, ${r.tta.views} views, logits averaged): accuracy ${
        pct(r.tta.accuracy)
      } (plain ${pct(r.tta.clean_accuracy)})`,
    );
  }
  const transfer = r.adversarial_from !== undefined;
  if (r.fgsm.length + r.pgd.length > 0) {
    lines.push(
      "",
      `attack    ε        accuracy   loss${transfer ? `     on ${r.adversarial_from}` : ""}`,
    );
    const row = (name: string, p: (typeof r.fgsm)[number]) =>
      `${name.padEnd(9)} ${p.eps.toFixed(5).padEnd(8)} ${pct(p.accuracy).padStart(8)}   ${
        p.loss.toFixed(4)
      }${p.source_accuracy !== undefined ? `   ${pct(p.source_accuracy).padStart(8)}` : ""}`;
    for (const p of r.fgsm) lines.push(row("FGSM", p));
    for (const p of r.pgd) lines.push(row(`PGD-${r.pgd_steps}`, p));
    lines.push("");
  }
  if (r.per_class) {
    lines.push(`macro F1 ${r.macro_f1!.toFixed(4)}; per class (F1):`);
    lines.push(
      "  " + r.per_class.map((c) => `${c.class}: ${c.f1.toFixed(3)}`).join("  "),
    );
  }
  if (r.auroc !== undefined) {
    lines.push(`AUROC ${r.auroc === null ? "undefined (one label only)" : r.auroc.toFixed(4)}`);
  }
  if (r.confusion && classes <= 20) {
    lines.push("confusion matrix (rows: label, columns: prediction):");
    const w = Math.max(3, ...r.confusion.flat().map((v) => String(v).length));
    for (const [i, row] of r.confusion.entries()) {
      lines.push(`  ${String(i).padStart(2)} | ${row.map((v) => String(v).padStart(w)).join(" ")}`);
    }
  }
  lines.push(
    `size: ${r.params.toLocaleString("en")} parameters, ${
      (r.flops_per_sample / 1e6).toFixed(3)
    } MFLOPs per sample (forward)`,
  );
  if (r.speed) {
    const s = r.speed;
    lines.push(
      `speed: latency ${s.latency_ms.toFixed(3)} ms per sample at batch 1 (round trip ${
        s.roundtrip_ms.toFixed(2)
      } ms), throughput ${
        Math.round(s.throughput).toLocaleString("en")
      } samples/s at batch ${s.throughput_batch} (${r.precision})`,
    );
  }
  return lines;
}
