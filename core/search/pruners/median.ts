/**
 * Optuna's `MedianPruner` (= `PercentilePruner(50)`, spec §4): prune when the trial's best
 * intermediate value so far is worse than the median of COMPLETE trials' values at the same
 * step, after `nStartupTrials` complete trials, from step `nWarmupSteps` on, and only at the
 * first report at or after each pruning point `warmup + k·interval`.
 * @module
 */

import { type FrozenTrial, TrialState } from "../journal.ts";
import type { SearchContext } from "../samplers/sampler.ts";

/** A pruner decides after each report whether the trial should stop. */
export interface Pruner {
  /** Short name for logs. */
  readonly name: string;
  /** True if `ctx.trial` should be pruned now. */
  prune(ctx: SearchContext): boolean;
}

/** MedianPruner settings (Optuna's defaults). */
export interface MedianPrunerOptions {
  /** Complete trials needed before pruning starts [5]. */
  nStartupTrials?: number;
  /** Steps of a trial that are never pruned [0]. */
  nWarmupSteps?: number;
  /** Check every this many steps after the warm-up [1]. */
  intervalSteps?: number;
  /** Complete trials that must have reported the step [1]. */
  nMinTrials?: number;
}

/**
 * numpy `nanpercentile(values, 50)` ("linear" method, numpy's `_lerp` rounding); NaN if every
 * value is NaN.
 */
export function nanMedian(values: readonly number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const r = 0.5 * (v.length - 1);
  const i = Math.floor(r);
  const t = r - i;
  const a = v[i]!;
  const b = v[Math.min(i + 1, v.length - 1)]!;
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/** Stops trials whose best value so far is worse than the median of completed trials. */
export class MedianPruner implements Pruner {
  readonly name = "median";
  /** Complete trials needed before pruning starts (default 5). */
  readonly nStartupTrials: number;
  /** Steps of a trial that are never pruned (default 0). */
  readonly nWarmupSteps: number;
  /** Pruning points are this many steps apart after the warm-up (default 1). */
  readonly intervalSteps: number;
  /** Complete trials that must have reported the step (default 1). */
  readonly nMinTrials: number;

  /** See {@link MedianPrunerOptions}. */
  constructor(opts: MedianPrunerOptions = {}) {
    this.nStartupTrials = opts.nStartupTrials ?? 5;
    this.nWarmupSteps = opts.nWarmupSteps ?? 0;
    this.intervalSteps = opts.intervalSteps ?? 1;
    this.nMinTrials = opts.nMinTrials ?? 1;
    if (this.nStartupTrials < 0) {
      throw new RangeError(`nStartupTrials must be >= 0, got ${this.nStartupTrials}`);
    }
    if (this.nWarmupSteps < 0) {
      throw new RangeError(`nWarmupSteps must be >= 0, got ${this.nWarmupSteps}`);
    }
    if (this.intervalSteps < 1) {
      throw new RangeError(`intervalSteps must be >= 1, got ${this.intervalSteps}`);
    }
    if (this.nMinTrials < 1) {
      throw new RangeError(`nMinTrials must be >= 1, got ${this.nMinTrials}`);
    }
  }

  prune(ctx: SearchContext): boolean {
    const complete = ctx.trials.filter((t) => t.state === TrialState.COMPLETE);
    if (complete.length === 0 || complete.length < this.nStartupTrials) return false;
    const trial: FrozenTrial = ctx.trial;
    const steps = [...trial.intermediateValues.keys()];
    if (steps.length === 0) return false;
    const step = Math.max(...steps);
    if (step < this.nWarmupSteps) return false;
    const w = this.nWarmupSteps;
    const nearest = Math.floor((step - w) / this.intervalSteps) * this.intervalSteps + w;
    const others = steps.filter((s) => s !== step);
    const prev = others.length > 0 ? Math.max(...others) : -1;
    if (prev >= nearest) return false;
    const maximize = ctx.direction === "maximize";
    const own = [...trial.intermediateValues.values()].filter((v) => !Number.isNaN(v));
    if (own.length === 0) return true;
    const best = maximize ? Math.max(...own) : Math.min(...own);
    const vals = complete.filter((t) => t.intermediateValues.has(step)).map((t) =>
      t.intermediateValues.get(step)!
    );
    if (vals.length < this.nMinTrials) return false;
    const p = nanMedian(vals);
    if (Number.isNaN(p)) return false;
    return maximize ? best < p : best > p;
  }
}
