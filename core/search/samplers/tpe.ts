/**
 * Optuna's default `TPESampler` (independent, univariate; spec §3): random sampling for the first
 * `nStartupTrials` finished trials, then per parameter a split of COMPLETE/PRUNED trials into
 * the best `gamma(n)` and the rest, Parzen estimators l and g, 24 candidates drawn from l, and
 * the candidate maximising log l − log g. Two numpy-compatible random streams seeded alike, as
 * in Optuna, so a seeded run reproduces Optuna's choices.
 * @module
 */

import { type Distribution, type ParamValue, toExternal } from "../distributions.ts";
import { type FrozenTrial, internalParam, TrialState } from "../journal.ts";
import { RandomState } from "../mt19937.ts";
import {
  defaultGamma,
  defaultWeights,
  ParzenEstimator,
  type ParzenOptions,
  TPE_PROFILES,
  type TpeProfile,
} from "./parzen.ts";
import { RandomSampler } from "./random.ts";
import { randomSeed, type Sampler, type SearchContext } from "./sampler.ts";

/** TPE settings; every default is Optuna's. */
export interface TpeOptions {
  /** Seed for both streams (TPE's and its startup RandomSampler's). */
  seed?: number;
  /** Random trials before TPE starts [10]. */
  nStartupTrials?: number;
  /** Candidates drawn from l [24]. */
  nEiCandidates?: number;
  /** Size of the good group for n finished trials [min(ceil(0.1·n), 25)]. */
  gamma?: (n: number) => number;
  /** Observation weights [ramp beyond 25]. */
  weights?: (n: number) => number[];
  /** Weight of the prior kernel in each Parzen estimator [1.0]. */
  priorWeight?: number;
  /** Floor kernel bandwidths at (hi − lo) / min(100, m + 2) for m observations [true]. */
  considerMagicClip?: boolean;
  /** Let the extreme points' bandwidths use the gap to lo/hi too [false]. */
  considerEndpoints?: boolean;
  /** Optuna version whose maths to follow ["4.9"], or explicit switches. */
  profile?: keyof typeof TPE_PROFILES | TpeProfile;
  /** Called with every choice TPE makes (not the startup trials' random draws). */
  observe?: (choice: TpeChoice) => void;
}

/** One choice of TPE: the candidates (internal values) drawn from l, their scores, the winner. */
export interface TpeChoice {
  /** The parameter's name. */
  param: string;
  /** The candidates, in internal form, in draw order. */
  candidates: readonly number[];
  /** log l(x) − log g(x) of each candidate: the acquisition score TPE maximises. */
  scores: readonly number[];
  /** Index of the chosen candidate. */
  chosen: number;
}

/** One trial's rank key: COMPLETE trials first by value, then PRUNED ones by progress. */
function rankKey(t: FrozenTrial, sign: number): [number, number] {
  if (t.state === TrialState.COMPLETE) return [-Infinity, sign * t.values![0]!];
  if (t.intermediateValues.size === 0) return [1, 0];
  const step = Math.max(...t.intermediateValues.keys());
  const v = t.intermediateValues.get(step)!;
  return [-step, Number.isNaN(v) ? Infinity : sign * v];
}

/** numpy orders NaN after everything, including +inf. */
function cmp(a: number, b: number): number {
  const na = Number.isNaN(a);
  const nb = Number.isNaN(b);
  if (na || nb) return na === nb ? 0 : na ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Splits finished trials (COMPLETE with a value, PRUNED) into the best `nBelow` and the rest,
 * each in number order, as `_split_observation_pairs` does.
 */
export function splitTrials(
  trials: readonly FrozenTrial[],
  direction: "minimize" | "maximize",
  nBelow: number,
): { below: FrozenTrial[]; above: FrozenTrial[] } {
  const sign = direction === "minimize" ? 1 : -1;
  const keys = trials.map((t) => rankKey(t, sign));
  const order = trials.map((_, i) => i).sort((i, j) =>
    cmp(keys[i]![0], keys[j]![0]) || cmp(keys[i]![1], keys[j]![1]) || i - j
  );
  const belowIdx = order.slice(0, nBelow).sort((a, b) => a - b);
  const aboveIdx = order.slice(nBelow).sort((a, b) => a - b);
  return { below: belowIdx.map((i) => trials[i]!), above: aboveIdx.map((i) => trials[i]!) };
}

/** The trials TPE learns from: COMPLETE ones with values, and PRUNED ones. */
export function observedTrials(trials: readonly FrozenTrial[]): FrozenTrial[] {
  return trials.filter((t) =>
    (t.state === TrialState.COMPLETE && t.values !== null) || t.state === TrialState.PRUNED
  );
}

/** Optuna's independent Tree-structured Parzen Estimator sampler. */
export class TpeSampler implements Sampler {
  readonly name = "tpe";
  /** Seed of both streams (random when not given). */
  readonly seed: number;
  /**
   * TPE's own stream (candidates).
   * @internal
   */
  readonly rng: RandomState;
  /** The startup sampler, with its own stream seeded alike. */
  readonly random: RandomSampler;
  /** Samples at random until this many trials are COMPLETE or PRUNED [10]. */
  readonly nStartupTrials: number;
  /** Candidates drawn from l per parameter [24]. */
  readonly nEiCandidates: number;
  /** Size of the good group for n finished trials. */
  readonly gamma: (n: number) => number;
  /**
   * The estimators' settings, defaults filled in.
   * @internal
   */
  readonly parzen: ParzenOptions;
  readonly #observe?: (choice: TpeChoice) => void;

  /** See {@link TpeOptions}. */
  constructor(opts: TpeOptions = {}) {
    this.seed = opts.seed ?? randomSeed();
    this.rng = new RandomState(this.seed);
    this.random = new RandomSampler(this.seed);
    this.nStartupTrials = opts.nStartupTrials ?? 10;
    this.nEiCandidates = opts.nEiCandidates ?? 24;
    this.gamma = opts.gamma ?? defaultGamma;
    const profile = opts.profile ?? "4.9";
    this.parzen = {
      profile: typeof profile === "string" ? TPE_PROFILES[profile] : profile,
      priorWeight: opts.priorWeight ?? 1,
      considerMagicClip: opts.considerMagicClip ?? true,
      considerEndpoints: opts.considerEndpoints ?? false,
      weights: opts.weights ?? defaultWeights,
    };
    this.#observe = opts.observe;
    if (!(this.nEiCandidates >= 1)) {
      throw new RangeError(`nEiCandidates must be >= 1, got ${this.nEiCandidates}`);
    }
  }

  sampleIndependent(ctx: SearchContext, param: string, dist: Distribution): ParamValue {
    const history = observedTrials(ctx.trials);
    const n = history.length;
    if (n < this.nStartupTrials) return this.random.sampleIndependent(ctx, param, dist);
    const { below, above } = splitTrials(history, ctx.direction, this.gamma(n));
    const obs = (ts: FrozenTrial[]) =>
      ts.map((t) => internalParam(t, param)).filter((v): v is number => v !== undefined);
    const l = new ParzenEstimator(obs(below), dist, this.parzen);
    const g = new ParzenEstimator(obs(above), dist, this.parzen);
    const candidates = l.sample(this.rng, this.nEiCandidates);
    const logL = l.logPdf(candidates);
    const logG = g.logPdf(candidates);
    const scores = candidates.map((_, i) => logL[i]! - logG[i]!);
    let best = 0;
    let bestScore = NaN;
    for (let i = 0; i < candidates.length; i++) {
      const s = scores[i]!;
      // numpy argmax: the first maximum, and a NaN wins as soon as it appears.
      if (Number.isNaN(bestScore) && i > 0) break;
      if (i === 0 || Number.isNaN(s) || s > bestScore) [best, bestScore] = [i, s];
    }
    this.#observe?.({ param, candidates, scores, chosen: best });
    return toExternal(dist, candidates[best]!);
  }
}
