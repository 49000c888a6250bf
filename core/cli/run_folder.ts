/**
 * A run folder's safety: its `config.json` (the resolved config, where it ran, and a format
 * version) read and written atomically, a lock held while a run uses the folder (so two runs on
 * one `--out` cannot interleave their files), and the rule that a new run does not reuse a folder
 * that holds files unless told to (`--overwrite`).
 *
 * @module
 */

import { join } from "node:path";
import { syncFolder } from "../io/safetensors.ts";
import { currentProcess, processAlive } from "../search/process.ts";
import type { Config } from "../train/registry.ts";

/** The format of a run folder this version writes (`config.json`'s `format`). */
export const RUN_FORMAT = "webgpu-trainer-run/1";
/** What a run folder without a `format` field is: the first version, which this one reads. */
const UNVERSIONED = "webgpu-trainer-run/0";
/** Formats this version can resume. */
const READABLE = new Set([RUN_FORMAT, UNVERSIONED]);

/** `config.json`: the resolved config and facts about the run. */
export interface RunRecord {
  format: string;
  config: Config;
  [key: string]: unknown;
}

/** The lock file's name inside a run folder. */
export const LOCK_NAME = ".lock";

/** The files a run writes; a folder holding any of them (or anything else) is not empty. */
export const RUN_FILES = [
  "config.json",
  "metrics.jsonl",
  "model.safetensors",
  "best.safetensors",
  "dataset.json",
  "curves.svg",
];

/**
 * Reads the `config.json` of a run to resume (or to fine-tune from, or predict with: `flag`
 * names the flag in messages); every failure names the file and what to do.
 */
export async function readRunRecord(dir: string, flag = "--resume"): Promise<RunRecord> {
  const path = join(dir, "config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      const exists = await Deno.stat(dir).then(() => true, () => false);
      throw new Error(
        exists
          ? `${flag} ${dir}: not a run folder (it has no config.json)${
            flag === "--resume" ? `; start a run with --out ${dir}` : ""
          }`
          : `${flag} ${dir}: no such folder`,
      );
    }
    throw new Error(`${flag} ${dir}: cannot read ${path} (${(e as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not JSON (${(e as Error).message})`);
  }
  const record = value as Partial<RunRecord> | null;
  if (
    record === null || typeof record !== "object" || typeof record.config !== "object" ||
    record.config === null || Array.isArray(record.config)
  ) {
    throw new Error(
      `${path}: has no "config" object, so it was not written by deno task train (${flag} needs a run folder)`,
    );
  }
  const format = typeof record.format === "string" ? record.format : UNVERSIONED;
  if (!READABLE.has(format)) {
    throw new Error(
      `${path}: run folder format "${format}", but this version of webgpu-trainer reads "${RUN_FORMAT}" (and "${UNVERSIONED}"); use it with the version that wrote it`,
    );
  }
  return { ...record, format, config: record.config as Config };
}

/** Writes `config.json` atomically: a temporary file, fsynced, renamed, the folder fsynced. */
export async function writeRunRecord(
  dir: string,
  record: Omit<RunRecord, "format">,
): Promise<void> {
  const path = join(dir, "config.json");
  const tmp = `${path}.tmp-${Deno.pid}`;
  const text = JSON.stringify({ ...record, format: RUN_FORMAT }, null, 2) + "\n";
  try {
    const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      await f.write(new TextEncoder().encode(text));
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`cannot write ${path} (${(e as Error).message}); the previous one is kept`, {
      cause: e,
    });
  }
  await syncFolder(dir);
}

/** Whether a folder holds anything (besides a lock of a dead run). */
export async function folderHolds(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.name !== LOCK_NAME) names.push(e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return names.sort();
}

/** The lock of a run folder: `DIR/.lock` holding the owner's host, pid and start. */
export class RunLock {
  readonly path: string;
  #released = false;

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Takes the folder's lock (creating the folder). A lock held by a live process is an error
   * naming it; one left by a dead process (same host) is taken over, and `onStale` says so.
   */
  static async acquire(
    dir: string,
    purpose: string,
    onStale: (message: string) => void = () => {},
  ): Promise<RunLock> {
    await Deno.mkdir(dir, { recursive: true });
    const path = join(dir, LOCK_NAME);
    const me = currentProcess();
    const body = JSON.stringify({ ...me, purpose, since: new Date().toISOString() });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const f = await Deno.open(path, { createNew: true, write: true });
        await f.write(new TextEncoder().encode(body));
        f.close();
        return new RunLock(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
      let holder: {
        host?: string;
        pid?: number;
        pidStart?: number;
        purpose?: string;
        since?: string;
      };
      try {
        holder = JSON.parse(await Deno.readTextFile(path));
      } catch {
        holder = {};
      }
      const alive = holder.host === me.host
        ? processAlive(Number(holder.pid), Number(holder.pidStart ?? -1))
        : null;
      if (alive !== false) {
        throw new Error(
          `${dir} is in use by ${holder.purpose ?? "a run"} (process ${holder.pid ?? "?"} on ${
            holder.host ?? "?"
          }, since ${holder.since ?? "?"}); wait for it to end or choose another folder` +
            (alive === null ? ` (if that process is gone, remove ${path})` : ""),
        );
      }
      onStale(
        `${dir}: taking over the lock of process ${holder.pid} (${holder.purpose}), which is gone`,
      );
      await Deno.remove(path).catch(() => {});
    }
    throw new Error(`${dir}: cannot take its lock ${path}`);
  }

  /** Releases the lock (once). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    try {
      Deno.removeSync(this.path);
    } catch {
      // Already gone.
    }
  }
}
