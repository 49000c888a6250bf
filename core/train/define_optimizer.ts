/**
 * Optimizers in a few lines: the user writes the per-element update (WGSL statements over named
 * state slots, the gradient, the parameter, the step's lr and the hyperparameters) and declares
 * the hyperparameters with defaults and ranges; the framework supplies everything else — the
 * segment lookup, lr multipliers, decoupled or coupled weight decay, gradient scaling and
 * clipping, the step counter for bias corrections, the dispatch geometry, and checkpointing of
 * the slots (`optim.<param>.<slot>`). The kernel around the statements is
 * `wgsl/optimizer_template.wgsl`.
 *
 * @example AdaBelief (Zhuang et al. 2020), decoupled weight decay
 * ```ts
 * import { defineOptimizer } from "webgpu-trainer";
 * export default defineOptimizer({
 *   name: "adabelief",
 *   description: "AdaBelief: Adam with the variance of the gradient around its mean",
 *   slots: ["exp_avg", "exp_avg_var"],
 *   hyper: {
 *     beta1: { default: 0.9, min: 0, max: 1, maxExclusive: true },
 *     beta2: { default: 0.999, min: 0, max: 1, maxExclusive: true },
 *     eps: { default: 1e-16, min: 0, minExclusive: true },
 *   },
 *   update: `
 *     exp_avg = hyper.beta1 * exp_avg + hyper.one_minus_beta1 * g;
 *     let d = g - exp_avg;
 *     exp_avg_var = hyper.beta2 * exp_avg_var + hyper.one_minus_beta2 * d * d + hyper.eps;
 *     let v_hat = exp_avg_var / one_minus_pow(hyper.log_beta2, t);
 *     p = p - lr * (exp_avg / one_minus_pow(hyper.log_beta1, t)) / (sqrt(v_hat) + hyper.eps);`,
 * });
 * ```
 *
 * @module
 */

import { grid, packUniform, type UniformField, wgsl } from "../gpu/kernels.ts";
import type { KeySpec } from "./keys.ts";
import type { Config, OptimizerContext, OptimizerPlugin } from "./registry.ts";
import templateSource from "../../wgsl/optimizer_template.wgsl" with { type: "text" };

/** A hyperparameter: its default and range (a config key of the optimizer). */
export interface HyperSpec extends Partial<Omit<KeySpec, "type" | "default">> {
  /** Its default value (the config key's default). */
  default: number;
}

/** What {@link defineOptimizer} makes an optimizer from. */
export interface OptimizerDefinition {
  /** The name users select it by (`--optimizer NAME`). */
  name: string;
  /** One line for `--help`. */
  description: string;
  /** Names of its state slots: one f32 per parameter each, zero at the start, checkpointed. */
  slots: string[];
  /**
   * Its hyperparameters, each a config key: in the WGSL as `hyper.<name>`, with `hyper.log_<name>`
   * (ln, for bias corrections) and `hyper.one_minus_<name>` computed in float64.
   */
  hyper?: Record<string, HyperSpec>;
  /** How `weight_decay` applies: "decoupled" (AdamW, default), "coupled" (Adam, SGD) or "none". */
  weightDecay?: "decoupled" | "coupled" | "none";
  /** WGSL statements that update `p` and the slots from `g`, `lr`, `t`, `wd` and `hyper`. */
  update: string;
  /** Trainer keys it wants when chosen (a plugin recipe: e.g. `{ lr: 1e-4, schedule: "cosine" }`). */
  recipe?: Config;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TAKEN = new Set([
  "p",
  "g",
  "lr",
  "t",
  "wd",
  "i",
  "s",
  "seg",
  "hyper",
  "setup",
  "params",
  "grads",
]);

/** The optimizer's kernel source: the template with its hyperparameters, slots and update. */
export function optimizerKernelSource(def: OptimizerDefinition): string {
  const hyper = Object.keys(def.hyper ?? {});
  const fields = hyper.flatMap((
    h,
  ) => [`  ${h}: f32,`, `  log_${h}: f32,`, `  one_minus_${h}: f32,`]);
  const struct = `struct Hyper {\n${fields.length > 0 ? fields.join("\n") : "  unused: f32,"}\n}`;
  const slots = def.slots.map((slot, k) =>
    `@group(0) @binding(${8 + k}) var<storage, read_write> slot_${slot}: array<f32>;`
  ).join("\n");
  const load = def.slots.map((slot) => `  var ${slot} = slot_${slot}[i];`).join("\n");
  const store = def.slots.map((slot) => `  slot_${slot}[i] = ${slot};`).join("\n");
  // The markers stand alone on their lines (the header comment names them too).
  const fill = (code: string, marker: string, text: string) =>
    code.replace(new RegExp(`^//!${marker}$`, "m"), () => text);
  let code = templateSource;
  code = fill(code, "hyper", struct);
  code = fill(code, "slots", slots);
  code = fill(code, "load", load);
  code = fill(code, "update", def.update);
  return fill(code, "store", store);
}

/** Checks a definition's names, naming the optimizer and what is wrong. */
function checkDefinition(def: OptimizerDefinition): void {
  const what = `optimizer "${def.name}"`;
  if (typeof def.name !== "string" || def.name === "") {
    throw new TypeError("defineOptimizer: name must be a non-empty string");
  }
  if (!Array.isArray(def.slots)) throw new TypeError(`${what}: slots must be a list of names`);
  if (typeof def.update !== "string") throw new TypeError(`${what}: update must be WGSL text`);
  const names = [...def.slots, ...Object.keys(def.hyper ?? {})];
  for (const n of names) {
    if (!IDENTIFIER.test(n) || TAKEN.has(n)) {
      throw new TypeError(
        `${what}: "${n}" cannot be a slot or hyperparameter name (a WGSL identifier other than ${
          [...TAKEN].join(", ")
        })`,
      );
    }
  }
  if (new Set(names).size !== names.length) {
    throw new TypeError(`${what}: slot and hyperparameter names must be distinct`);
  }
  for (const [k, spec] of Object.entries(def.hyper ?? {})) {
    if (typeof spec.default !== "number" || !Number.isFinite(spec.default)) {
      throw new TypeError(`${what}: hyperparameter "${k}" needs a finite number default`);
    }
  }
}

/** ln x in float64, clamped so that x = 0 gives a finite, very negative value. */
function logOf(x: number): number {
  return x > 0 ? Math.max(Math.log(x), -80) : -80;
}

/** An optimizer plugin from its per-element update. */
export function defineOptimizer(def: OptimizerDefinition): OptimizerPlugin {
  checkDefinition(def);
  const hyper = def.hyper ?? {};
  const kernel = wgsl(`optimizer ${def.name}`, optimizerKernelSource(def));
  const decay = { none: 0, coupled: 1, decoupled: 2 }[def.weightDecay ?? "decoupled"];
  if (decay === undefined) {
    throw new TypeError(
      `optimizer "${def.name}": weightDecay must be "decoupled", "coupled" or "none", got "${def.weightDecay}"`,
    );
  }
  return {
    kind: "optimizer",
    name: def.name,
    description: def.description,
    defaults: Object.fromEntries(Object.entries(hyper).map(([k, s]) => [k, s.default])),
    keys: Object.fromEntries(
      Object.entries(hyper).map(([k, s]) => [k, { ...s, type: "number" as const }]),
    ),
    ...(def.recipe ? { recipe: def.recipe } : {}),
    slots: [...def.slots],
    async create(ctx: OptimizerContext, config: Config) {
      const gpu = ctx.kernels.gpu;
      const label = `optimizer.${def.name}`;
      const common = gpu.uniform(
        `${label} common`,
        packUniform([
          ["u32", ctx.n],
          ["u32", ctx.segmentCount],
          ["f32", ctx.maxGradNorm],
          ["f32", ctx.gradScale],
        ]),
      );
      const fields: UniformField[] = Object.keys(hyper).flatMap((k) => {
        const v = Number(config[k] ?? hyper[k]!.default);
        return [["f32", v], ["f32", logOf(v)], ["f32", 1 - v]] as UniformField[];
      });
      const hyperBuffer = gpu.uniform(
        `${label} hyper`,
        packUniform(fields.length > 0 ? fields : [["f32", 0]]),
      );
      if (ctx.state.length !== def.slots.length) {
        throw new RangeError(
          `${label}: ${def.slots.length} state slots, ${ctx.state.length} buffers`,
        );
      }
      return [
        await ctx.kernels.dispatch({
          kernel,
          constants: { DECAY: decay },
          bindings: [
            ctx.params,
            ctx.grads,
            ctx.segments,
            ctx.counters,
            ctx.lrTable,
            ctx.gradNorm,
            common,
            hyperBuffer,
            ...ctx.state,
          ],
          workgroups: grid(ctx.n, 256),
          label,
        }),
      ];
    },
  };
}
