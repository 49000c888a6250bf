/**
 * The univariate Parzen estimator of Optuna's independent TPE (spec §3.4–§3.5): mixture weights,
 * kernel centres and bandwidths (neighbour gaps, magic clip, prior), categorical kernel rows,
 * candidate drawing in Optuna's random-number order, and the mixture log density.
 * @module
 */

import type { Distribution } from "../distributions.ts";
import type { RandomState } from "../mt19937.ts";
import { logGaussMass, truncnormLogPdf, truncnormPpf } from "../truncnorm.ts";
import { numpyArgsort } from "../npsort.ts";
import { roundHalfEven } from "./random.ts";

/** The TPE maths switches that differ between Optuna versions (spec §3.8). */
export interface TpeProfile {
  /** The continuous density includes 1/σ (Optuna ≥ 3.5). */
  logSigma: boolean;
  /** Int log uses discrete probability mass in log space (Optuna ≥ 4.7). */
  intLogDiscrete: boolean;
  /** The prior centre takes part in the neighbour-gap bandwidths (Optuna ≤ 4.8). */
  priorInBandwidth: boolean;
}

/** Named profiles: "3.1" (Debian's python3-optuna), "3.5", "4.7" and "4.9" (the default). */
export const TPE_PROFILES: Record<"3.1" | "3.5" | "4.7" | "4.9", TpeProfile> = {
  "3.1": { logSigma: false, intLogDiscrete: false, priorInBandwidth: true },
  "3.5": { logSigma: true, intLogDiscrete: false, priorInBandwidth: true },
  "4.7": { logSigma: true, intLogDiscrete: true, priorInBandwidth: true },
  "4.9": { logSigma: true, intLogDiscrete: true, priorInBandwidth: false },
};

/** Estimator settings (Optuna's defaults in brackets). */
export interface ParzenOptions {
  profile: TpeProfile;
  /** [1.0] */
  priorWeight: number;
  /** [true] */
  considerMagicClip: boolean;
  /** [false] */
  considerEndpoints: boolean;
  /** Observation weights in chronological order [{@link defaultWeights}]. */
  weights: (n: number) => number[];
}

/** `linspace(a, b, m)` as numpy computes it. */
function linspace(a: number, b: number, m: number): number[] {
  if (m <= 0) return [];
  if (m === 1) return [a];
  const step = (b - a) / (m - 1);
  return Array.from({ length: m }, (_, i) => (i === m - 1 ? b : a + i * step));
}

/** Optuna's `default_weights(n)`: ones below 25, else a ramp from 1/n then 25 ones. */
export function defaultWeights(n: number): number[] {
  if (n === 0) return [];
  if (n < 25) return new Array(n).fill(1);
  return [...linspace(1 / n, 1, n - 25), ...new Array(25).fill(1)];
}

/** Optuna's `default_gamma(n)`: min(ceil(0.1·n), 25). */
export function defaultGamma(n: number): number {
  return Math.min(Math.ceil(0.1 * n), 25);
}

/** A fitted univariate Parzen estimator over internal values. */
export class ParzenEstimator {
  /** Mixture weights: observations then the prior, normalised. */
  readonly weights: number[];
  /** Kernel centres in transformed space (numeric distributions). */
  readonly mus: number[] = [];
  /** Kernel bandwidths in transformed space (numeric distributions). */
  readonly sigmas: number[] = [];
  /** Kernel rows over choice indices (categorical distributions). */
  readonly categoricalRows: number[][] = [];
  /** Transformed bounds [lo, hi] (numeric). */
  readonly lo: number = 0;
  readonly hi: number = 0;
  /** Step in transformed space for discrete kernels, or null for continuous ones. */
  readonly q: number | null = null;

  /** Fits to `observations` (internal values, chronological). */
  constructor(
    observations: readonly number[],
    readonly dist: Distribution,
    readonly opts: ParzenOptions,
  ) {
    const m = observations.length;
    const w = opts.weights(m).slice(0, m);
    const raw = [...w, opts.priorWeight];
    const sum = raw.reduce((a, b) => a + b, 0);
    this.weights = raw.map((x) => x / sum);
    if (dist.kind === "categorical") {
      const c = dist.choices.length;
      const base = opts.priorWeight / (m + 1);
      for (let i = 0; i <= m; i++) {
        const row = new Array(c).fill(base);
        if (i < m) row[Math.trunc(observations[i]!)] += 1;
        const rs = row.reduce((a, b) => a + b, 0);
        this.categoricalRows.push(row.map((x) => x / rs));
      }
      return;
    }
    [this.lo, this.hi, this.q] = parzenBounds(dist, opts.profile);
    const t = observations.map((x) => (dist.log ? Math.log(x) : x));
    const priorMu = 0.5 * (this.lo + this.hi);
    const priorSigma = this.hi - this.lo;
    const points = opts.profile.priorInBandwidth ? [...t, priorMu] : t;
    const sig = neighbourGaps(points, this.lo, this.hi, opts.considerEndpoints).slice(0, m);
    const maxSigma = this.hi - this.lo;
    // Magic clip: the floor (hi − lo) / min(100, m + 2) keeps kernels from collapsing.
    const minSigma = opts.considerMagicClip
      ? (this.hi - this.lo) / Math.min(100, 1 + (m + 1))
      : 1e-12;
    this.mus.push(...t, priorMu);
    this.sigmas.push(...sig.map((s) => Math.min(Math.max(s, minSigma), maxSigma)), priorSigma);
  }

  /** Draws `size` candidates (internal values) in Optuna's random-number order. */
  sample(rng: RandomState, size: number): number[] {
    const cdf: number[] = [];
    let acc = 0;
    for (const w of this.weights) cdf.push(acc += w);
    const total = cdf[cdf.length - 1]!;
    const active = Array.from({ length: size }, () => {
      const u = rng.random();
      let k = 0; // searchsorted(side="right"): the first index whose cdf exceeds u
      while (k < cdf.length - 1 && cdf[k]! / total <= u) k++;
      return k;
    });
    const d = this.dist;
    if (d.kind === "categorical") {
      return active.map((k) => {
        const u = rng.random();
        let c = 0;
        let cum = 0;
        for (const p of this.categoricalRows[k]!) if ((cum += p) < u) c++;
        return c;
      });
    }
    return active.map((k) => {
      const u = rng.uniform(0, 1);
      const mu = this.mus[k]!;
      const sigma = this.sigmas[k]!;
      const t = truncnormPpf(u, (this.lo - mu) / sigma, (this.hi - mu) / sigma) * sigma + mu;
      if (d.kind === "float") {
        if (d.log) return Math.exp(t);
        if (d.step !== null) {
          return Math.min(
            Math.max(roundHalfEven((t - d.low) / d.step) * d.step + d.low, d.low),
            d.high,
          );
        }
        return t;
      }
      if (d.log) return Math.min(Math.max(roundHalfEven(Math.exp(t)), d.low), d.high);
      return Math.min(
        Math.max(roundHalfEven((t - d.low) / d.step) * d.step + d.low, d.low),
        d.high,
      );
    });
  }

  /** log l(x) of the mixture at internal values `xs`. */
  logPdf(xs: readonly number[]): number[] {
    const d = this.dist;
    if (d.kind === "categorical") {
      const c = d.choices.length;
      const mix = new Array(c).fill(0);
      this.categoricalRows.forEach((row, k) =>
        row.forEach((p, j) => (mix[j] += this.weights[k]! * p))
      );
      return xs.map((x) => Math.log(mix[Math.trunc(x)]));
    }
    const logW = this.weights.map(Math.log);
    return xs.map((x) => {
      const t = d.log ? Math.log(x) : x;
      const terms = this.mus.map((mu, k) =>
        logW[k]! + this.#componentLogPdf(t, x, mu, this.sigmas[k]!)
      );
      const max = Math.max(...terms);
      if (max === -Infinity) return -Infinity;
      return Math.log(terms.reduce((s, v) => s + Math.exp(v - max), 0)) + max;
    });
  }

  #componentLogPdf(t: number, x: number, mu: number, sigma: number): number {
    const a = (this.lo - mu) / sigma;
    const b = (this.hi - mu) / sigma;
    if (this.q === null) return truncnormLogPdf(t, a, b, mu, sigma, this.opts.profile.logSigma);
    // Discrete kernels: the Gaussian mass of the bin around x, divided by the mass in bounds.
    let upper: number;
    let lower: number;
    if (this.dist.kind === "int" && this.dist.log) {
      upper = Math.log(x + 0.5);
      lower = Math.log(x - 0.5);
    } else {
      upper = Math.min(t + this.q / 2, this.hi);
      lower = Math.max(t - this.q / 2, this.lo);
    }
    return logGaussMass((lower - mu) / sigma, (upper - mu) / sigma) - logGaussMass(a, b);
  }
}

/** Transformed bounds and discrete step for a numeric distribution (spec §3.4 table). */
function parzenBounds(d: Distribution, profile: TpeProfile): [number, number, number | null] {
  if (d.kind === "categorical") throw new RangeError("categorical has no numeric bounds");
  if (d.kind === "float") {
    if (d.log) return [Math.log(d.low), Math.log(d.high), null];
    if (d.step !== null) return [d.low - 0.5 * d.step, d.high + 0.5 * d.step, d.step];
    return [d.low, d.high, null];
  }
  if (d.log) {
    return [Math.log(d.low - 0.5), Math.log(d.high + 0.5), profile.intLogDiscrete ? 1 : null];
  }
  return [d.low - 0.5 * d.step, d.high + 0.5 * d.step, d.step];
}

/**
 * Each point's bandwidth: the larger gap to its sorted neighbours with lo/hi as sentinels;
 * without `considerEndpoints` the extreme points use their inner gap only. Which tied point
 * gets which gap follows numpy's unstable argsort, as in Optuna (spec §3.4).
 */
function neighbourGaps(
  points: readonly number[],
  lo: number,
  hi: number,
  considerEndpoints: boolean,
): number[] {
  const order = numpyArgsort(points);
  const s = [lo, ...order.map((i) => points[i]!), hi];
  const sorted = order.map((_, k) => Math.max(s[k + 1]! - s[k]!, s[k + 2]! - s[k + 1]!));
  if (!considerEndpoints && s.length >= 4) {
    sorted[0] = s[2]! - s[1]!;
    sorted[sorted.length - 1] = s[s.length - 2]! - s[s.length - 3]!;
  }
  const out = new Array<number>(points.length);
  order.forEach((i, k) => (out[i] = sorted[k]!));
  return out;
}
