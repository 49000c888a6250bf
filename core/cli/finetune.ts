/**
 * `deno task train --finetune DIR`: a new run that starts from another run's checkpoint. The
 * source's folder is only read — its `config.json` (the model and its keys, the plugin modules)
 * and its checkpoint, read once, hashed and decoded from the same bytes — and the new run keeps
 * the source's model: its head is replaced for the new classes, its input layer when the new
 * data has other features, and the rest (the body) is loaded. `--mode linear` freezes the body (a
 * linear probe: `freeze`), `--body-lr-mult M` scales its learning rate (`lr_multipliers`); both
 * become ordinary keys of the new run's config, so `--resume` continues it like any run. Where
 * the run came from is recorded in its `config.json` (`finetune`).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { CHECKPOINT_FORMAT } from "../io/checkpoint.ts";
import { decodeSafetensors, type Tensor } from "../io/safetensors.ts";
import { pluginKeySpecs } from "../train/config.ts";
import {
  finetuneKeys,
  type FinetuneMode,
  type FinetunePlan,
  planFinetune,
} from "../train/finetune.ts";
import { flagOf } from "../train/keys.ts";
import type { Config, DatasetInfo, Registry } from "../train/registry.ts";
import { readRunRecord, type RunRecord } from "./run_folder.ts";

/** A fine-tune's source run, read once. */
export interface FinetuneSource {
  /** The source's run folder. */
  dir: string;
  /** Its `config.json`. */
  record: RunRecord;
  /** The checkpoint file read (`model.safetensors`, or the file `--finetune` named). */
  checkpoint: string;
  /** Hex SHA-256 of the checkpoint's bytes, the same bytes the tensors were decoded from. */
  sha256: string;
  /** The checkpoint's tensors (weights and optimizer state) and metadata. */
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

/**
 * Reads the source of `--finetune PATH`: a run folder (its `model.safetensors`) or a checkpoint
 * file inside one (`best.safetensors`). Errors name the flag and the file.
 */
export async function readFinetuneSource(path: string): Promise<FinetuneSource> {
  const isFile = await Deno.stat(path).then((s) => s.isFile, () => false);
  const dir = isFile ? dirname(path) : path;
  const checkpoint = isFile ? path : join(dir, "model.safetensors");
  const record = await readRunRecord(dir, "--finetune");
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(checkpoint);
  } catch (e) {
    throw new Error(
      e instanceof Deno.errors.NotFound
        ? `--finetune ${path}: no checkpoint ${checkpoint} (the run stopped before its first checkpoint?); fine-tune from a run that wrote one`
        : `--finetune ${path}: cannot read ${checkpoint} (${(e as Error).message})`,
    );
  }
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const decoded = (() => {
    try {
      return decodeSafetensors(bytes, checkpoint);
    } catch (e) {
      throw new Error(`--finetune ${path}: ${(e as Error).message}`, { cause: e });
    }
  })();
  const metadata = decoded.metadata ?? {};
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new Error(
      `--finetune ${path}: ${checkpoint} is not a webgpu-trainer checkpoint (format ${
        JSON.stringify(metadata.format ?? null)
      }, this version reads "${CHECKPOINT_FORMAT}")`,
    );
  }
  return { dir, record, checkpoint, sha256, tensors: decoded.tensors, metadata };
}

/** The source's model and its keys, from its config.json: the first layer of the new config. */
export function sourceModelKeys(registry: Registry, source: FinetuneSource): Config {
  const config = source.record.config;
  const model = registry.get("model", String(config.model));
  const out: Config = { model: model.name };
  for (const key of Object.keys(pluginKeySpecs(model))) {
    if (key in config) out[key] = config[key];
  }
  return out;
}

/**
 * Fails when a layer of the new config (a `--config` file, the flags) chooses another model than
 * the source's, before the model's keys are resolved against the wrong plugin.
 */
export function checkSourceModelName(
  source: FinetuneSource,
  layers: { source: string; values: Config }[],
  flags: Config,
): void {
  const model = String(source.record.config.model);
  for (const layer of [...layers, { source: "flags", values: flags }]) {
    const chosen = layer.values.model;
    if (chosen === undefined || String(chosen) === model) continue;
    throw new RangeError(
      `${
        layer.source === "flags" ? "--model" : `${layer.source}: key "model"`
      }: a fine-tune keeps the source's model "${model}" (${
        join(source.dir, "config.json")
      }), not "${chosen}"; only its head and input layer are replaced`,
    );
  }
}

/**
 * Fails when the new config's model differs from the source's — in config.json or in the
 * checkpoint's own metadata (files that do not belong together) — naming the flag (or the
 * `--config` file) that changed it.
 */
export function checkSameModel(
  registry: Registry,
  source: FinetuneSource,
  config: Config,
  where: (key: string) => string,
): void {
  const keys = sourceModelKeys(registry, source);
  const recordPath = join(source.dir, "config.json");
  let written: Config = {};
  try {
    written = JSON.parse(source.metadata.config ?? "{}");
  } catch {
    throw new Error(`--finetune ${source.checkpoint}: __metadata__.config is not JSON`);
  }
  for (const [key, value] of Object.entries(keys)) {
    const show = JSON.stringify;
    if (key in written && show(written[key]) !== show(value)) {
      throw new Error(
        `--finetune ${source.checkpoint}: written by a model with ${key} ${
          show(written[key])
        }, but ${recordPath} says ${show(value)}; the folder's files do not belong together`,
      );
    }
    if (show(config[key]) !== show(value)) {
      throw new RangeError(
        `${where(key)}: a fine-tune keeps the source's model, whose ${key} is ${
          show(value)
        } (${recordPath}), not ${
          show(config[key])
        }; only its head and input layer are replaced (drop ${flagOf(key)})`,
      );
    }
  }
}

/** `--mode` and `--body-lr-mult`, checked. */
export function finetuneOptions(
  mode: string | undefined,
  bodyLrMult: string | undefined,
  lrMultipliers: unknown,
): { mode: FinetuneMode; bodyLrMult: number } {
  const m = mode ?? "finetune";
  if (m !== "finetune" && m !== "linear") {
    throw new RangeError(`--mode must be "finetune" or "linear", got "${m}"`);
  }
  // finetune.py's body_learning_rate_multiplier defaults to 0.1 (algorithms.md §1.4).
  const mult = bodyLrMult === undefined ? (m === "finetune" ? 0.1 : 1) : Number(bodyLrMult);
  if (bodyLrMult !== undefined && (bodyLrMult.trim() === "" || !(mult >= 0))) {
    throw new RangeError(`--body-lr-mult must be a number ≥ 0, got "${bodyLrMult}"`);
  }
  if (bodyLrMult !== undefined && m === "linear") {
    throw new RangeError(
      "--body-lr-mult scales the body's learning rate in --mode finetune; --mode linear freezes the body",
    );
  }
  if (String(lrMultipliers ?? "").trim() !== "") {
    if (bodyLrMult !== undefined) {
      throw new RangeError(
        "--body-lr-mult and --lr-multipliers both set the body's learning rate; use one of them",
      );
    }
    // --lr-multipliers says it all: the default body multiplier steps aside.
    return { mode: m, bodyLrMult: 1 };
  }
  return { mode: m, bodyLrMult: mult };
}

/** What a fine-tune records in its config.json under `finetune`. */
export interface FinetuneRecord {
  source_run: string;
  checkpoint: string;
  checkpoint_sha256: string;
  source_dataset: unknown;
  source_epoch: number;
  source_step: number;
  mode: FinetuneMode;
  body_lr_mult: number;
  /** How the head and input layer were known: declared by the model plugin, or detected. */
  parts: "declared" | "detected";
  /** Parameters initialised afresh: the head, and the input layer when its shape changed. */
  head: string[];
  input_layer: string[];
  /** Parameter values loaded from the source (the body). */
  loaded_values: number;
}

/** A planned fine-tune: which parameters are loaded, the keys it sets, what it records. */
export interface FinetuneSetup {
  plan: FinetunePlan;
  /** Trainer keys to set on the config (`freeze`, `lr_multipliers`). */
  keys: Config;
  record: FinetuneRecord;
  /** Lines to print: what is replaced, loaded and frozen. */
  lines: string[];
}

/** Plans the fine-tune of `config` (the source's model) onto data `info` from `source`. */
export function setupFinetune(
  registry: Registry,
  config: Config,
  info: DatasetInfo,
  source: FinetuneSource,
  options: { mode: FinetuneMode; bodyLrMult: number },
): FinetuneSetup {
  const sourceShapes = new Map(
    Object.entries(source.tensors).filter(([n]) => !n.startsWith("optim.")).map((
      [n, t],
    ) => [n, t.shape]),
  );
  const plan = planFinetune({
    registry,
    config,
    info,
    mode: options.mode,
    sourceShapes,
    sourcePath: source.checkpoint,
  });
  const keys = finetuneKeys(config, plan, options.bodyLrMult);
  const shape = (names: string[], from: Map<string, readonly number[]>) =>
    names.map((n) => `${n} [${from.get(n) ?? "?"}]`).join(", ");
  const lines = [
    `fine-tune from ${source.checkpoint} (sha256 ${
      source.sha256.slice(0, 12)
    }…, ${source.record.config.dataset}, step ${source.metadata.step}): ${plan.loaded.length} tensors (${
      plan.loadedValues.toLocaleString("en")
    } values) loaded; head ${plan.parts.head.join(", ")} (${
      plan.parts.how === "declared" ? "declared by the model plugin" : "detected"
    }) replaced for ${info.classes} classes`,
    plan.input.length > 0
      ? `input layer replaced: the source's ${
        shape(plan.input, sourceShapes)
      } does not take this data's ${info.features} features; it trains from a fresh initialisation`
      : `input layer ${plan.parts.input.join(", ") || "(none)"} kept: ${info.features} features`,
    options.mode === "linear"
      ? `linear probe: the body is frozen (freeze "${
        keys.freeze ?? ""
      }"): no gradients, optimizer state or backward work for it`
      : options.bodyLrMult !== 1
      ? `the body trains at ${options.bodyLrMult} × lr (lr_multipliers "${keys.lr_multipliers}")`
      : "the whole model trains at the same lr",
  ];
  const record: FinetuneRecord = {
    source_run: resolve(source.dir),
    checkpoint: resolve(source.checkpoint),
    checkpoint_sha256: source.sha256,
    source_dataset: source.record.config.dataset,
    source_epoch: Number(source.metadata.epoch),
    source_step: Number(source.metadata.step),
    mode: options.mode,
    body_lr_mult: options.bodyLrMult,
    parts: plan.parts.how,
    head: plan.head,
    input_layer: plan.input,
    loaded_values: plan.loadedValues,
  };
  return { plan, keys, record, lines };
}

/** Fails when the new run's folder is the source's: a source run is never modified. */
export function checkNotSource(outDir: string, source: FinetuneSource): void {
  if (resolve(outDir) === resolve(source.dir)) {
    throw new RangeError(
      `--out ${outDir} is the --finetune source run; a source is only read: choose another folder (e.g. --out ${
        join(dirname(resolve(source.dir)), `${basename(resolve(source.dir))}-finetune`)
      })`,
    );
  }
}
