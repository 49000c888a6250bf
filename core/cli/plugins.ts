/**
 * Loads `--plugin` modules into a registry. A module default-exports a plugin, an array of
 * plugins, or a `register(registry)` function; errors name the file and the problem.
 *
 * @module
 */

import { pathToFileURL } from "node:url";
import type { Plugin, Registry } from "../registry.ts";
import { userPath } from "./args.ts";

const KINDS = ["model", "optimizer", "schedule", "dataset"];

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
  }[p.kind as string]!;
  if (typeof p[method] !== "function") {
    throw new TypeError(`${where}: ${p.kind} "${p.name}" needs a function "${method}"`);
  }
  p.description ??= "";
  return p as unknown as Plugin;
}

/** Imports each plugin module and registers what it exports. */
export async function loadPlugins(paths: readonly string[], registry: Registry): Promise<void> {
  for (const raw of paths) {
    const path = userPath(raw);
    const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(path) ? path : pathToFileURL(path).href;
    let module: Record<string, unknown>;
    try {
      module = await import(url);
    } catch (e) {
      throw new Error(`--plugin ${raw}: cannot load ${path}: ${(e as Error).message}`);
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
