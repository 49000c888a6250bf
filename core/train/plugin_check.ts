/**
 * Checks a plugin's fields when it registers, so a mistake is an error naming the file and the
 * field at load — not a `Cannot read properties of undefined` deep inside a run.
 *
 * @module
 */

import { closestNames } from "./keys.ts";
import type { Plugin } from "./registry.ts";

type Check = (v: unknown) => string | null;

const fn: Check = (v) => typeof v === "function" ? null : "a function";
const str: Check = (v) => typeof v === "string" ? null : "a string";
const bool: Check = (v) => typeof v === "boolean" ? null : "true or false";
const record: Check = (v) =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? null : "an object";
const names: Check = (v) => {
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string" && /^[A-Za-z_][\w]*$/.test(s))) {
    return 'an array of names (e.g. ["exp_avg", "exp_avg_sq"]; [] for none)';
  }
  return new Set(v).size === v.length ? null : "an array of distinct names";
};
const keyList: Check = (v) =>
  Array.isArray(v) && v.every((k) => typeof k === "string" && /^[a-z][a-z0-9_]*$/.test(k))
    ? null
    : 'an array of its config keys that hold paths (e.g. ["data", "test_data"])';
const defaults: Check = (v) => {
  if (record(v)) return "an object of its config keys and their default values";
  for (const [k, d] of Object.entries(v as Record<string, unknown>)) {
    const ok = typeof d === "string" || typeof d === "boolean" ||
      (typeof d === "number" && Number.isFinite(d));
    if (!ok) {
      return `an object of defaults: a string, finite number or boolean each ("${k}" is ${
        JSON.stringify(d)
      })`;
    }
    if (!/^[a-z][a-z0-9_]*$/.test(k)) return `an object of snake_case keys ("${k}" is not)`;
  }
  return null;
};

/** Fields every plugin has: required ones and optional ones. */
const BASE: Record<string, [Check, boolean]> = {
  kind: [str, true],
  name: [str, true],
  description: [str, false],
  defaults: [defaults, true],
  keys: [record, false],
  recipe: [record, false],
};

/** Each kind's own fields: [check, required]. */
const KIND_FIELDS: Record<Plugin["kind"], Record<string, [Check, boolean]>> = {
  model: { build: [fn, true], expand: [fn, false] },
  optimizer: {
    slots: [names, true],
    create: [fn, true],
    step: [fn, false],
    slotsFor: [fn, false],
    wraps: [str, false],
  },
  schedule: { lr: [fn, true], handlesWarmup: [bool, false] },
  dataset: { load: [fn, true], paths: [keyList, false] },
  sampler: { create: [fn, true] },
  loss: { apply: [fn, true], outputs: [fn, false] },
};

/**
 * Checks a plugin's fields, types and key specs; returns it with `description` defaulted, or
 * throws naming `where` (e.g. `--plugin ./mish.ts [1]`), the field and what it must be.
 */
export function checkPlugin(plugin: unknown, where: string): Plugin {
  if (typeof plugin !== "object" || plugin === null || Array.isArray(plugin)) {
    throw new TypeError(`${where}: a plugin must be an object, got ${JSON.stringify(plugin)}`);
  }
  const p = plugin as Record<string, unknown>;
  const kinds = Object.keys(KIND_FIELDS);
  if (!kinds.includes(String(p.kind))) {
    throw new TypeError(
      `${where}: field "kind" is ${JSON.stringify(p.kind)}; known are ${
        kinds.map((k) => `"${k}"`).join(", ")
      }`,
    );
  }
  if (typeof p.name !== "string" || !/^[A-Za-z0-9][\w.-]*$/.test(p.name)) {
    throw new TypeError(
      `${where}: field "name" must be a non-empty name of letters, digits, "-", "_" or ".", got ${
        JSON.stringify(p.name)
      }`,
    );
  }
  const label = `${where}: ${p.kind} "${p.name}"`;
  const fields = { ...BASE, ...KIND_FIELDS[p.kind as Plugin["kind"]] };
  for (const field of Object.keys(p)) {
    if (field in fields) continue;
    const near = closestNames(field, Object.keys(fields));
    throw new TypeError(
      `${label}: unknown field "${field}"${near.length ? `; did you mean "${near[0]}"?` : ""} (${
        /^[aeiou]/.test(String(p.kind)) ? "an" : "a"
      } ${p.kind} has ${Object.keys(fields).map((f) => `"${f}"`).join(", ")})`,
    );
  }
  for (const [field, [check, required]] of Object.entries(fields)) {
    if (p[field] === undefined) {
      if (required) throw new TypeError(`${label} needs field "${field}": ${check(undefined)}`);
      continue;
    }
    const want = check(p[field]);
    if (want !== null) {
      throw new TypeError(
        `${label}: field "${field}" must be ${want}, got ${describe(p[field])}`,
      );
    }
  }
  const own = p.defaults as Record<string, unknown>;
  for (const [key, spec] of Object.entries((p.keys ?? {}) as Record<string, unknown>)) {
    if (!(key in own)) {
      throw new TypeError(
        `${label}: field "keys" describes "${key}", which is not in its "defaults" (add a default)`,
      );
    }
    if (record(spec)) throw new TypeError(`${label}: keys.${key} must be an object (a key spec)`);
  }
  if (p.kind === "optimizer" && typeof p.wraps === "string" && typeof own[p.wraps] !== "string") {
    throw new TypeError(
      `${label}: field "wraps" names the key "${p.wraps}", which must be one of its "defaults" with the default base optimizer's name (e.g. { ${p.wraps}: "adamw" })`,
    );
  }
  p.description ??= "";
  return p as unknown as Plugin;
}

function describe(v: unknown): string {
  if (typeof v === "function") return "a function";
  if (v === null) return "null";
  if (Array.isArray(v)) return `the array ${JSON.stringify(v).slice(0, 60)}`;
  if (typeof v === "object") return "an object";
  return `${typeof v} ${JSON.stringify(v)}`;
}
