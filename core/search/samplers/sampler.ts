/**
 * What a sampler is to the study loop: it may set system attributes when a trial starts (the
 * grid sampler's `search_space`/`grid_id`), proposes each parameter independently, and may ask
 * the study to stop after a trial.
 * @module
 */

import type { Distribution, ParamValue } from "../distributions.ts";
import type { FrozenTrial } from "../journal.ts";
import type { JsonValue } from "../pyjson.ts";

/** A single-objective study's direction. */
export type Direction = "minimize" | "maximize";

/** What a sampler or pruner sees. */
export interface SearchContext {
  /** The study's trials in number order, every state, including `trial`. */
  readonly trials: readonly FrozenTrial[];
  /** Whether the study minimises or maximises its objective. */
  readonly direction: Direction;
  /** The trial being sampled (or pruned). */
  readonly trial: FrozenTrial;
}

/** A parameter sampler. */
export interface Sampler {
  /** Short name for logs ("random", "tpe", "grid"). */
  readonly name: string;
  /** System attributes to record on a new trial before its parameters, in order. */
  beforeTrial?(ctx: SearchContext): [string, JsonValue][];
  /** Proposes a value (external form) for `param` from `dist`. */
  sampleIndependent(ctx: SearchContext, param: string, dist: Distribution): ParamValue;
  /** Called after a trial finished; true asks the study to stop (nothing left to try). */
  afterTrial?(ctx: SearchContext): boolean;
}

/** A fresh 32-bit seed when the caller gives none. */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}
