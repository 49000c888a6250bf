/**
 * Command-line parsing shared by the commands: `--key value`, `--key=value` and boolean
 * `--flag`, where every config key is a flag (`--batch-size` ↔ `batch_size`). Values are coerced
 * to the type of the key's default. Paths resolve against the directory the user ran the command
 * from (`INIT_CWD` under `deno task`), never against the repository.
 *
 * @module
 */

import { isAbsolute, resolve } from "@std/path";
import type { Config } from "../registry.ts";
import { keyOf } from "../config.ts";

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

/** Coerces a flag's string to the type of the key's default (number, boolean or string). */
export function coerce(key: string, raw: string, defaults: Config): unknown {
  const example = defaults[key];
  if (typeof example === "number") {
    const v = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(v)) {
      throw new RangeError(`flag --${key.replaceAll("_", "-")} needs a number, got "${raw}"`);
    }
    return v;
  }
  if (typeof example === "boolean") {
    if (raw !== "true" && raw !== "false") {
      throw new RangeError(`flag --${key.replaceAll("_", "-")} needs true or false, got "${raw}"`);
    }
    return raw === "true";
  }
  return raw;
}
