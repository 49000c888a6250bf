/**
 * What `--resume` may change, and what a new run may reuse. A resumed run keeps the keys that fix
 * its position and shapes (the model and its keys, the dataset, batch size, accumulation, samples,
 * validation split, seed, optimizer…): changing one is an error naming it. Keys marked free in the
 * schema (epochs, lr, the schedule and its keys, log and checkpoint cadence) may change, and the
 * new values are recorded in config.json. A finished run resumed without more epochs says so. A
 * new run refuses a folder that holds files, unless `--overwrite`.
 *
 * @module
 */

import { join } from "node:path";
import { readSafetensors } from "../io/safetensors.ts";
import type { BuiltRun } from "../train/build.ts";
import { knownKeys } from "../train/config.ts";
import { flagOf } from "../train/keys.ts";
import type { Config, Registry } from "../train/registry.ts";
import { folderHolds, RUN_FILES, type RunRecord } from "./run_folder.ts";

/** Keys that name where things are rather than what the run is: a moved folder may resume. */
const PATH_KEYS = new Set(["data", "out"]);

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The keys whose values differ between two configs and are not free on resume. */
function fixedChanges(
  registry: Registry,
  saved: Config,
  now: Config,
): { key: string; was: unknown; now: unknown }[] {
  const known = knownKeys(registry, saved);
  const keys = new Set([...Object.keys(saved), ...Object.keys(now)]);
  const out: { key: string; was: unknown; now: unknown }[] = [];
  for (const key of keys) {
    if (PATH_KEYS.has(key) || same(saved[key], now[key])) continue;
    if (known.get(key)?.resume === "free") continue;
    out.push({ key, was: saved[key], now: now[key] });
  }
  return out;
}

/** Fails naming the first fixed key a resume would change. */
export function checkResume(registry: Registry, record: RunRecord, config: Config, dir: string) {
  const changes = fixedChanges(registry, record.config, config);
  if (changes.length > 0) {
    const c = changes[0]!;
    throw new RangeError(
      `--resume ${dir}: ${flagOf(c.key)} cannot change on resume (the run has ${
        JSON.stringify(c.was)
      }, now ${
        JSON.stringify(c.now)
      }): it fixes the run's position and shapes. Keys that may change: epochs, lr, the schedule and its keys, warmup, log and checkpoint cadence; for anything else start a new run`,
    );
  }
}

/**
 * The checkpoint of a resumed run, checked against its config.json; when it is already at the
 * configured end, the message and summary to print instead of training.
 */
export async function finishedRun(
  run: BuiltRun,
  checkpointPath: string,
): Promise<{ message: string; summary: Record<string, unknown> } | undefined> {
  const { metadata } = await readSafetensors(checkpointPath);
  let saved: Config;
  try {
    saved = JSON.parse(metadata?.config ?? "{}");
  } catch {
    throw new RangeError(`${checkpointPath}: __metadata__.config is not JSON`);
  }
  for (const key of ["model", "dataset", "optimizer", "batch_size", "grad_accum", "seed"]) {
    if (key in saved && !same(saved[key], run.config[key])) {
      throw new RangeError(
        `${checkpointPath} was written by another run: its ${key} is ${
          JSON.stringify(saved[key])
        }, config.json's is ${JSON.stringify(run.config[key])}`,
      );
    }
  }
  const epoch = Number(metadata?.epoch);
  const stepInEpoch = Number(metadata?.step_in_epoch);
  const epochs = run.settings.epochs;
  if (!(epoch >= epochs && stepInEpoch === 0)) return undefined;
  const dir = join(checkpointPath, "..");
  const last = await lastEpochRecord(join(dir, "metrics.jsonl"));
  const summary = {
    status: "finished",
    epochs,
    steps: Number(metadata?.step),
    out_dir: dir,
    ...(last ?? {}),
  };
  return {
    message:
      `${dir}: the run is finished (epoch ${epoch} of ${epochs}); add --epochs N (N > ${epochs}) to train it further. Its last evaluation: ${
        last
          ? `test accuracy ${(100 * Number(last.test_accuracy)).toFixed(2)}%, test loss ${
            Number(last.test_loss).toFixed(4)
          }`
          : "none recorded"
      }`,
    summary,
  };
}

async function lastEpochRecord(path: string): Promise<Record<string, unknown> | undefined> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
  for (const line of text.split("\n").reverse()) {
    try {
      const r = JSON.parse(line);
      if (r.type === "epoch") return r;
    } catch {
      // torn or blank line
    }
  }
  return undefined;
}

/** Fails when a new run's folder holds files, unless `overwrite`. */
export async function checkNewFolder(dir: string, overwrite: boolean): Promise<void> {
  const held = await folderHolds(dir);
  if (held.length > 0 && !overwrite) {
    const run = held.some((f) => RUN_FILES.includes(f));
    throw new Error(
      `--out ${dir} holds ${run ? "a run" : "files"} (${held.slice(0, 5).join(", ")}${
        held.length > 5 ? ", …" : ""
      }): choose another folder, continue it with --resume ${dir}, or add --overwrite to replace it`,
    );
  }
}

/** Removes a previous run's files from a folder about to be overwritten (nothing else). */
export async function clearRunFiles(dir: string): Promise<void> {
  for (const f of RUN_FILES) await Deno.remove(join(dir, f)).catch(() => {});
}
