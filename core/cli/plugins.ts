/**
 * Loads `--plugin` modules into a registry. A module default-exports a plugin, an array of
 * plugins, or a `register(registry)` function; errors name the file and the problem.
 *
 * @module
 */

import { pathToFileURL } from "node:url";
import type { Plugin, Registry } from "../train/registry.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import { isElementwiseOp } from "../graph/elementwise_op.ts";
import { userPath } from "./args.ts";

const KINDS = ["model", "optimizer", "schedule", "dataset", "sampler", "loss"];

/** Whether this process runs from a `deno compile` binary (its modules live in a virtual dir). */
export function isCompiledBinary(): boolean {
  return /\/deno-compile-[^/]+\//.test(import.meta.url);
}

function check(plugin: unknown, where: string): Plugin {
  const p = plugin as Record<string, unknown>;
  if (typeof p !== "object" || p === null) {
    throw new TypeError(`${where}: a plugin must be an object`);
  }
  if (!KINDS.includes(String(p.kind))) {
    throw new TypeError(
      `${where}: field "kind" is ${JSON.stringify(p.kind)}; known are ${
        KINDS.map((k) => `"${k}"`).join(", ")
      }`,
    );
  }
  if (typeof p.name !== "string" || p.name === "") {
    throw new TypeError(`${where}: field "name" must be a non-empty string`);
  }
  if (typeof p.defaults !== "object" || p.defaults === null) {
    throw new TypeError(
      `${where}: ${p.kind} "${p.name}" needs a "defaults" object (its config keys)`,
    );
  }
  const method = {
    model: "build",
    optimizer: "create",
    schedule: "lr",
    dataset: "load",
    sampler: "create",
    loss: "apply",
  }[p.kind as string]!;
  if (typeof p[method] !== "function") {
    throw new TypeError(`${where}: ${p.kind} "${p.name}" needs a function "${method}"`);
  }
  p.description ??= "";
  return p as unknown as Plugin;
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
): Promise<void> {
  for (const raw of paths) {
    const path = userPath(raw);
    const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(path) ? path : pathToFileURL(path).href;
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
      await (exported as (r: Registry) => unknown)(registry);
      continue;
    }
    const list = Array.isArray(exported) ? exported : [exported];
    list.forEach((p, i) =>
      registry.register(
        check(p, `--plugin ${raw}${Array.isArray(exported) ? ` [${i}]` : ""}`),
        `--plugin ${raw}`,
      )
    );
  }
}
