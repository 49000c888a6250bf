/**
 * Loads `--plugin` modules into a registry. A module default-exports a plugin, an array of
 * plugins, or a `register(registry)` function; errors name the file and the problem.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { pathToFileURL } from "node:url";
import type { Plugin, Registry } from "../train/registry.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import { isElementwiseOp } from "../graph/elementwise_op.ts";
import { userPath } from "./args.ts";

/** Whether this process runs from a `deno compile` binary (its modules live in a virtual dir). */
export function isCompiledBinary(): boolean {
  return /\/deno-compile-[^/]+\//.test(import.meta.url);
}

/**
 * Imports each plugin module and registers what it exports: its default export's plugins, and the
 * ops it exports by name (`export const mish = defineElementwiseOp(...)`) into the registry's op
 * table. With `kernels`, those ops' WGSL is compiled right away, so a kernel that does not
 * compile is reported with the plugin file that brought it.
 */
export async function loadPlugins(
  paths: readonly string[],
  registry: Registry,
  kernels?: KernelCache,
): Promise<PluginModule[]> {
  const modules: PluginModule[] = [];
  for (const raw of paths) {
    const path = userPath(raw);
    const remote = /^[a-z][a-z0-9+.-]*:\/\//i.test(path);
    const url = remote ? path : pathToFileURL(path).href;
    modules.push({ path, sha256: remote ? null : await fileSha256(path).catch(() => null) });
    let module: Record<string, unknown>;
    try {
      module = await import(url);
    } catch (e) {
      if (isCompiledBinary()) {
        throw new Error(
          `--plugin ${raw}: this compiled binary cannot load ${path}: deno compile embeds only the ` +
            `modules known at build time (${
              (e as Error).message.split("\n")[0]
            }). Run from source ` +
            `(deno task train --plugin ${raw}) or rebuild with the plugin embedded: ` +
            `deno task compile --include ${raw}`,
        );
      }
      throw new Error(`--plugin ${raw}: cannot load ${path}: ${(e as Error).message}`);
    }
    for (const value of Object.values(module)) {
      if (!isElementwiseOp(value)) continue;
      registry.ops.register(value.name, value.rule, `--plugin ${raw}`);
      if (!kernels) continue;
      try {
        await kernels.module(value.kernel);
      } catch (e) {
        throw new Error(`--plugin ${raw}: ${(e as Error).message}`);
      }
    }
    const exported = module.default;
    if (exported === undefined) {
      throw new TypeError(
        `--plugin ${raw}: ${path} has no default export (a plugin, an array of plugins, or register(registry))`,
      );
    }
    if (typeof exported === "function") {
      await registry.during(
        `--plugin ${raw}`,
        () => (exported as (r: Registry) => unknown)(registry),
      );
      continue;
    }
    const list = Array.isArray(exported) ? exported : [exported];
    list.forEach((p, i) =>
      registry.register(p as Plugin, `--plugin ${raw}${Array.isArray(exported) ? ` [${i}]` : ""}`)
    );
  }
  return modules;
}

/** A plugin module a run loaded: its absolute path (or URL) and the SHA-256 of its file. */
export interface PluginModule {
  path: string;
  /** Hex SHA-256 of the file's bytes; null for a URL. */
  sha256: string | null;
}

/** The hex SHA-256 of a file's bytes. */
export async function fileSha256(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

/**
 * The plugin modules to load for `--resume` (or another command that reopens a run: `flag`
 * names it): those given with `--plugin` if any (a changed file is reported through `log`), else
 * those the run recorded — each checked to exist and to hold the same bytes, or an error saying
 * what moved or changed and how to go on.
 */
export async function resumePlugins(
  recorded: readonly PluginModule[] | undefined,
  given: readonly string[],
  dir: string,
  log: (line: string) => void,
  flag = "--resume",
): Promise<string[]> {
  const list = recorded ?? [];
  if (given.length > 0) {
    for (const raw of given) {
      const path = userPath(raw);
      const sha = await fileSha256(path).catch(() => null);
      const same = list.find((m) => m.sha256 !== null && m.sha256 === sha);
      if (list.length > 0 && !same) {
        log(
          `note: --plugin ${raw} is not byte-for-byte a module this run was trained with (${
            list.map((m) => m.path).join(", ")
          }); going on with it as given`,
        );
      }
    }
    return [...given];
  }
  const out: string[] = [];
  for (const m of list) {
    if (m.sha256 === null) {
      out.push(m.path);
      continue;
    }
    const now = await fileSha256(m.path).catch((e) => e as Error);
    if (now instanceof Error) {
      throw new Error(
        `${flag} ${dir}: the run was trained with --plugin ${m.path}, which is gone (${
          now instanceof Deno.errors.NotFound ? "no such file" : now.message
        }); if it moved, pass its new place: ${flag} ${dir} --plugin NEW_PATH`,
      );
    }
    if (now !== m.sha256) {
      throw new Error(
        `${flag} ${dir}: --plugin ${m.path} changed since the run was trained (sha256 ${
          m.sha256.slice(0, 12)
        }… then, ${
          now.slice(0, 12)
        }… now), so its model or optimizer may no longer match the checkpoint; restore the file, or pass --plugin ${m.path} to use it as it is now`,
      );
    }
    out.push(m.path);
  }
  return out;
}
