/**
 * Command-line parsing shared by the commands: `--key value`, `--key=value` and boolean
 * `--flag`, where every config key is a flag (`--batch-size` ↔ `batch_size`). Values are coerced
 * to the type of the key's default. Paths resolve against the directory the user ran the command
 * from (`INIT_CWD` under `deno task`), never against the repository.
 *
 * @module
 */

import { isAbsolute, resolve } from "@std/path";
import type { Config } from "../train/registry.ts";
import { keyOf } from "../train/config.ts";

/** The directory the user ran the command from. */
export function userCwd(): string {
  return Deno.env.get("INIT_CWD") ?? Deno.cwd();
}

/** A path given by the user, resolved against {@link userCwd}. URLs are left as they are. */
export function userPath(path: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) return path;
  return isAbsolute(path) ? path : resolve(userCwd(), path);
}

/** Flags as given: key → raw values (repeatable flags keep every value). */
export interface ParsedArgs {
  values: Map<string, string[]>;
  booleans: Set<string>;
  positionals: string[];
}

/** Splits argv into flags and positionals; `booleanKeys` never take a value. */
export function parseFlags(argv: readonly string[], booleanKeys: ReadonlySet<string>): ParsedArgs {
  const values = new Map<string, string[]>();
  const booleans = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--") || arg === "--") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const key = keyOf(eq >= 0 ? arg.slice(0, eq) : arg);
    if (booleanKeys.has(key)) {
      if (eq >= 0 && !/^(true|false)$/.test(arg.slice(eq + 1))) {
        throw new RangeError(
          `flag --${key.replaceAll("_", "-")} takes no value, got "${arg.slice(eq + 1)}"`,
        );
      }
      if (eq < 0 || arg.slice(eq + 1) === "true") booleans.add(key);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) value = argv[++i];
    if (value === undefined) {
      throw new RangeError(`flag --${key.replaceAll("_", "-")} needs a value`);
    }
    values.set(key, [...values.get(key) ?? [], value]);
  }
  return { values, booleans, positionals };
}

/** A named layer of config values. */
export interface ConfigLayer {
  source: string;
  values: Config;
}

/**
 * The layers of a run: the default recipe when nothing chooses a model or preset (mnist-cpu on a
 * software adapter, mnist-gpu on a GPU), the file layers, then the flags (as text: resolveConfig
 * converts them to their keys' types, known only once the plugins are chosen).
 */
export function runLayers(
  fallbackAdapter: boolean,
  fileLayers: ConfigLayer[],
  rawFlags: Config,
): { layers: ConfigLayer[]; recipe?: string } {
  const chooses = (values: Config) => "preset" in values || "model" in values || "arch" in values;
  const explicit = fileLayers.some((l) => chooses(l.values)) || chooses(rawFlags);
  const recipe = explicit ? undefined : fallbackAdapter ? "mnist-cpu" : "mnist-gpu";
  const base = recipe ? [{ source: "default recipe", values: { preset: recipe } }] : [];
  // Flags stay text here; resolveConfig converts each to its key's type and checks its range.
  return { layers: [...base, ...fileLayers, { source: "flags", values: rawFlags }], recipe };
}

/** Reads a JSON object of config keys; errors name the flag and the file. */
export async function readJson(path: string, what: string): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`${what} ${path}: cannot read it (${(e as Error).message})`);
  }
  try {
    const value = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new Error("not an object");
    }
    return value as Config;
  } catch (e) {
    throw new Error(`${what} ${path}: not a JSON object (${(e as Error).message})`);
  }
}

/** A file-name-safe timestamp for run directories. */
export function timestamp(): string {
  return new Date().toISOString().replace(/[:]/g, "-").replace(/\..*$/, "");
}

/** The file-name-safe form of a study name: its trials run in `runs/<this>/trial-<n>/`. */
export function studyFolderName(study: string): string {
  return study.replace(/[^\w.-]+/g, "_");
}
