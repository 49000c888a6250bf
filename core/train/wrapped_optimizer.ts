/**
 * Optimizers that wrap another ({@link OptimizerPlugin.wraps}): SAM names the optimizer that takes
 * the step through one of its keys (`sam_base`). This module finds that base for a configuration
 * and lays out the run's state slots (the base's first, then the wrapper's own), with errors that
 * name the key and the choices.
 *
 * @module
 */

import type { Config, OptimizerPlugin, Registry } from "./registry.ts";

/** The base optimizer `plugin` wraps under `config`, or undefined when it wraps none. */
export function baseOptimizer(
  registry: Registry,
  config: Config,
  plugin: OptimizerPlugin,
): OptimizerPlugin | undefined {
  const key = plugin.wraps;
  if (key === undefined) return undefined;
  const name = String(config[key] ?? plugin.defaults[key] ?? "");
  const single = registry.list("optimizer")
    .filter((p) => p.kind === "optimizer" && !p.wraps && !p.step)
    .map((p) => `"${p.name}"`).sort();
  if (!registry.names("optimizer").includes(name)) {
    throw new RangeError(
      `${key} "${name}" (the optimizer that optimizer "${plugin.name}" wraps) is not an optimizer; known are ${
        single.join(", ")
      }`,
    );
  }
  const base = registry.get("optimizer", name);
  if (base.wraps || base.step) {
    throw new RangeError(
      `${key} "${name}": optimizer "${plugin.name}" needs a base that updates in one pass, but "${name}" ${
        base.wraps ? "wraps another optimizer" : "brings its own step"
      }; choose one of ${single.join(", ")}`,
    );
  }
  return base;
}

/** The slots an optimizer allocates under `config`: its `slotsFor`, else all of its `slots`. */
export function ownSlots(plugin: OptimizerPlugin, config: Config): string[] {
  return plugin.slotsFor ? plugin.slotsFor(config) : [...plugin.slots];
}

/**
 * The run's state slots: the base's (under their own names, as when it runs alone), then the
 * wrapper's own; a name both use is an error naming both optimizers.
 */
export function runSlots(
  plugin: OptimizerPlugin,
  base: OptimizerPlugin | undefined,
  config: Config,
): { base: string[]; own: string[] } {
  const own = ownSlots(plugin, config);
  const under = base ? ownSlots(base, config) : [];
  const shared = own.filter((s) => under.includes(s));
  if (base && shared.length > 0) {
    throw new RangeError(
      `optimizer "${plugin.name}" and its base "${base.name}" both have the state slot "${
        shared[0]
      }"; rename one of them`,
    );
  }
  return { base: under, own };
}
