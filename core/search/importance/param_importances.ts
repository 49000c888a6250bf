/**
 * `optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=s))`
 * over a study's trials, as Optuna 3.1 does it: the parameters every complete trial has with the
 * same distribution (sorted by name), one-hot categoricals and raw numbers (no log transform), a
 * forest of 64 trees of depth 64 on the complete trials with a finite value, fANOVA, normalised
 * and sorted by importance. Parameters with a single possible value get 0.
 *
 * @module
 */

import { choiceEquals, type Distribution, isSingle, toInternal } from "../distributions.ts";
import { type FrozenTrial, TrialState } from "../journal.ts";
import { fanovaImportances } from "./fanova.ts";
import { fitForest } from "./forest.ts";

/** Options of {@link paramImportances}. */
export interface ParamImportanceOptions {
  /** The forest's seed (Optuna's `FanovaImportanceEvaluator(seed=...)`); default 0. */
  seed?: number;
  /** Trees in the forest; default 64. */
  nTrees?: number;
  /** Depth of each tree; default 64. */
  maxDepth?: number;
  /** What to explain; default the (first) objective value. */
  target?: (t: FrozenTrial) => number;
}

/** One parameter's importance. */
export interface ParamImportance {
  /** The parameter. */
  name: string;
  /** Its share, in [0, 1]. */
  importance: number;
}

/** The result: importances (largest first, summing to 1), and what they were computed from. */
export interface ParamImportances {
  /** Largest first. */
  importances: ParamImportance[];
  /** The method, for a reader: evaluator, forest and seed. */
  method: string;
  /** How many trials the forest was fitted on. */
  trials: number;
}

function sameDistribution(a: Distribution, b: Distribution): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "categorical") {
    const c = (b as typeof a).choices;
    return a.choices.length === c.length && a.choices.every((x, i) => choiceEquals(x, c[i]!));
  }
  const o = b as typeof a;
  return a.low === o.low && a.high === o.high && a.log === o.log && a.step === o.step;
}

/** Optuna's `intersection_search_space` of the complete trials, sorted by name. */
export function intersectionSearchSpace(
  trials: readonly FrozenTrial[],
): [string, Distribution][] {
  let space: Map<string, Distribution> | undefined;
  for (const t of trials) {
    if (t.state !== TrialState.COMPLETE) continue;
    if (!space) {
      space = new Map(Object.entries(t.distributions));
      continue;
    }
    for (const [name, d] of space) {
      const other = t.distributions[name];
      if (!other || !sameDistribution(d, other)) space.delete(name);
    }
  }
  return [...(space ?? new Map())].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** What the forest is fitted on: Optuna's `_SearchSpaceTransform(transform_log=False)` of the trials. */
export interface ImportanceProblem {
  /** Parameters with more than one possible value, by name; each has `columns[i]`. */
  varying: string[];
  /** Parameters with a single possible value (importance 0). */
  single: string[];
  /** One row per used trial: raw numbers, one-hot categoricals. */
  rows: number[][];
  /** The value each row should predict. */
  targets: number[];
  /** Each encoded column's range (a categorical's columns are [0, 1]). */
  bounds: [number, number][];
  /** Per varying parameter, its encoded columns. */
  columns: number[][];
}

/**
 * The rows and targets of the complete trials that have every parameter of the intersection
 * search space and a finite target. Throws a RangeError saying why when there is nothing to fit.
 */
export function importanceProblem(
  trials: readonly FrozenTrial[],
  target: (t: FrozenTrial) => number = (t) => t.values?.[0] ?? NaN,
): ImportanceProblem {
  const complete = trials.filter((t) => t.state === TrialState.COMPLETE);
  if (complete.length < 2) {
    throw new RangeError(
      `parameter importances need at least 2 complete trials, the study has ${complete.length}`,
    );
  }
  const space = intersectionSearchSpace(trials);
  const varying = space.filter(([, d]) => !isSingle(d));
  const single = space.filter(([, d]) => isSingle(d)).map(([name]) => name);
  const used = complete.filter((t) =>
    space.every(([name]) => name in t.params) && Number.isFinite(target(t))
  );
  if (varying.length > 0 && used.length === 0) {
    throw new RangeError("parameter importances need complete trials with a finite value");
  }
  const bounds: [number, number][] = [];
  const columns: number[][] = [];
  for (const [, d] of varying) {
    const width = d.kind === "categorical" ? d.choices.length : 1;
    columns.push(Array.from({ length: width }, (_, k) => bounds.length + k));
    for (let k = 0; k < width; k++) {
      bounds.push(d.kind === "categorical" ? [0, 1] : [d.low, d.high]);
    }
  }
  const rows = used.map((t) => {
    const row: number[] = [];
    for (const [name, d] of varying) {
      if (d.kind === "categorical") {
        const hot = toInternal(d, t.params[name]!);
        d.choices.forEach((_, k) => row.push(k === hot ? 1 : 0));
      } else row.push(Number(t.params[name]));
    }
    return row;
  });
  return {
    varying: varying.map(([name]) => name),
    single,
    rows,
    targets: used.map(target),
    bounds,
    columns,
  };
}

/** fANOVA importances of a study's parameters (see the module doc). */
export function paramImportances(
  trials: readonly FrozenTrial[],
  opts: ParamImportanceOptions = {},
): ParamImportances {
  const seed = opts.seed ?? 0;
  const nTrees = opts.nTrees ?? 64;
  const maxDepth = opts.maxDepth ?? 64;
  const method =
    `fANOVA (Optuna's default evaluator): a random forest of ${nTrees} trees, depth ${maxDepth}, seed ${seed}`;
  const p = importanceProblem(trials, opts.target);
  if (p.varying.length === 0) return { importances: [], method, trials: 0 };
  const trees = fitForest(p.rows, p.targets, { nTrees, maxDepth, seed });
  const values = fanovaImportances(trees, p.bounds, p.columns);
  const all = [
    ...p.varying.map((name, i) => ({ name, importance: values[i]! })),
    ...p.single.map((name) => ({ name, importance: 0 })),
  ];
  // Optuna sorts ascending (stable) and reverses: among equal values the later name comes first.
  const sorted = all.map((q, i) => ({ q, i }))
    .sort((a, b) => a.q.importance - b.q.importance || a.i - b.i)
    .reverse()
    .map(({ q }) => q);
  return { importances: sorted, method, trials: p.rows.length };
}
