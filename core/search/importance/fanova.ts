/**
 * fANOVA (Hutter, Hoos & Leyton-Brown, ICML 2014) as Optuna 3.1's default importance evaluator
 * computes it (`FanovaImportanceEvaluator`, `optuna/importance/_fanova/_tree.py`): for each tree of
 * a random forest fitted to the complete trials, the variance of the tree's prediction marginalised
 * over every parameter but one, as a fraction of the tree's total variance; averaged over trees,
 * then normalised to sum to 1.
 *
 * @module
 */

import type { RegressionTree } from "./forest.ts";

/** Per column of the encoded search space, its `[low, high]`. */
export type Bounds = [low: number, high: number][];

function cardinality(space: Bounds): number {
  let c = 1;
  for (const [lo, hi] of space) c *= hi - lo;
  return c;
}

function weightedVariance(values: number[], weights: number[]): number {
  let sw = 0, swv = 0;
  for (let i = 0; i < values.length; i++) {
    sw += weights[i]!;
    swv += weights[i]! * values[i]!;
  }
  const mean = swv / sw;
  let acc = 0;
  for (let i = 0; i < values.length; i++) acc += weights[i]! * (values[i]! - mean) ** 2;
  return acc / sw;
}

/** One tree's functional ANOVA decomposition over the search space `bounds` (one per column). */
export class FanovaTree {
  readonly #tree: RegressionTree;
  readonly #bounds: Bounds;
  /** Per node: the mean prediction over its subspace, and the subspace's volume. */
  readonly #value: number[] = [];
  readonly #weight: number[] = [];
  readonly #midpoints: number[][] = [];
  readonly #sizes: number[][] = [];
  /** Per node, per column: whether the node's subtree splits on the column. */
  readonly #active: boolean[][] = [];
  /** The variance of the tree's prediction over the whole space. */
  readonly variance: number;

  /** Precomputes the tree's per-node statistics, split midpoints and split features. */
  constructor(tree: RegressionTree, bounds: Bounds) {
    this.#tree = tree;
    this.#bounds = bounds;
    this.#precomputeStatistics();
    this.#precomputeMidpoints();
    this.#precomputeActive();
    const leaves = tree.feature.flatMap((f, i) => (f < 0 ? [i] : []));
    this.variance = weightedVariance(
      leaves.map((i) => this.#value[i]!),
      leaves.map((i) => this.#weight[i]!),
    );
  }

  #children(node: number): [number, number] {
    return [this.#tree.childrenLeft[node]!, this.#tree.childrenRight[node]!];
  }

  /** The subspaces of a split node's two children. */
  #childSpaces(node: number, space: Bounds): [Bounds, Bounds] {
    const f = this.#tree.feature[node]!;
    const t = this.#tree.threshold[node]!;
    const left = space.map((b) => [...b] as [number, number]);
    const right = space.map((b) => [...b] as [number, number]);
    left[f]![1] = t;
    right[f]![0] = t;
    return [left, right];
  }

  #precomputeStatistics(): void {
    const { feature, value } = this.#tree;
    const n = feature.length;
    const spaces: (Bounds | undefined)[] = new Array(n);
    spaces[0] = this.#bounds;
    for (let node = 0; node < n; node++) {
      const space = spaces[node]!;
      if (feature[node]! < 0) {
        this.#value[node] = value[node]!;
        this.#weight[node] = cardinality(space);
      } else {
        const [l, r] = this.#children(node);
        [spaces[l], spaces[r]] = this.#childSpaces(node, space);
      }
    }
    for (let node = n - 1; node >= 0; node--) {
      if (feature[node]! < 0) continue;
      const [l, r] = this.#children(node);
      const w = this.#weight[l]! + this.#weight[r]!;
      this.#value[node] =
        (this.#value[l]! * this.#weight[l]! + this.#value[r]! * this.#weight[r]!) /
        w;
      this.#weight[node] = w;
    }
  }

  #precomputeMidpoints(): void {
    const splits = this.#bounds.map(() => new Set<number>());
    this.#tree.feature.forEach((f, node) => {
      if (f >= 0) splits[f]!.add(this.#tree.threshold[node]!);
    });
    splits.forEach((set, f) => {
      const [lo, hi] = this.#bounds[f]!;
      const edges = [lo, ...[...set].sort((a, b) => a - b), hi];
      this.#midpoints.push(edges.slice(1).map((e, i) => 0.5 * (e + edges[i]!)));
      this.#sizes.push(edges.slice(1).map((e, i) => e - edges[i]!));
    });
  }

  #precomputeActive(): void {
    const { feature } = this.#tree;
    const columns = this.#bounds.length;
    for (let node = feature.length - 1; node >= 0; node--) {
      const row = new Array<boolean>(columns).fill(false);
      if (feature[node]! >= 0) {
        row[feature[node]!] = true;
        for (const c of this.#children(node)) {
          this.#active[c]!.forEach((a, k) => (row[k] ||= a));
        }
      }
      this.#active[node] = row;
    }
  }

  /** The variance of the prediction as a function of `columns` alone (others marginalised). */
  marginalVariance(columns: readonly number[]): number {
    const values: number[] = [];
    const weights: number[] = [];
    const sample = new Array<number>(this.#bounds.length).fill(NaN);
    const grid = columns.map((c) => this.#midpoints[c]!.map((m, i) => [m, this.#sizes[c]![i]!]));
    for (const combo of product(grid)) {
      let size = 1;
      combo.forEach(([m, s], k) => {
        sample[columns[k]!] = m!;
        size *= s!;
      });
      const [value, weight] = this.#marginalized(sample);
      values.push(value);
      weights.push(weight * size);
    }
    return weightedVariance(values, weights);
  }

  /** The mean prediction at `sample`'s fixed columns, averaged over the NaN (free) ones. */
  #marginalized(sample: readonly number[]): [number, number] {
    const { feature, threshold } = this.#tree;
    const free = sample.map((v) => Number.isNaN(v));
    // Free columns count with volume 1: only the fixed columns' cells are weighed.
    const start: Bounds = this.#bounds.map((b, k) => (free[k] ? [0, 1] : [b[0], b[1]]));
    const stack: [number, Bounds][] = [[0, start]];
    let sumW = 0, sumWV = 0;
    while (stack.length > 0) {
      const [node, space] = stack.pop()!;
      const f = feature[node]!;
      if (f >= 0) {
        if (!free[f]) {
          const [left, right] = this.#childSpaces(node, space);
          const goLeft = sample[f]! <= threshold[node]!;
          const [l, r] = this.#children(node);
          stack.push(goLeft ? [l, left] : [r, right]);
          continue;
        }
        if (this.#active[node]!.some((a, k) => a && !free[k])) {
          for (const c of this.#children(node)) stack.push([c, space]);
          continue;
        }
      }
      const w = this.#weight[node]! / cardinality(space);
      sumW += w;
      sumWV += w * this.#value[node]!;
    }
    return [sumWV / sumW, sumW];
  }
}

function* product(lists: number[][][]): Generator<number[][]> {
  if (lists.length === 0) {
    yield [];
    return;
  }
  const [head, ...rest] = lists;
  for (const item of head!) for (const tail of product(rest)) yield [item, ...tail];
}

/**
 * fANOVA importance of each parameter: `columns[p]` lists parameter `p`'s encoded columns (one for
 * a number, one per choice for a categorical). Returns the mean over trees with non-zero variance
 * of the parameter's share of it, normalised to sum to 1 (as Optuna's `_Fanova` and evaluator).
 */
export function fanovaImportances(
  trees: readonly RegressionTree[],
  bounds: Bounds,
  columns: readonly (readonly number[])[],
): number[] {
  const fanova = trees.map((t) => new FanovaTree(t, bounds));
  if (fanova.every((t) => t.variance === 0)) {
    throw new RangeError(
      "cannot assess importances: every tree predicts a constant (the trials' values are all equal)",
    );
  }
  const raw = columns.map((cols) => {
    let sum = 0, count = 0;
    for (const t of fanova) {
      if (!(t.variance > 0)) continue;
      sum += Math.max(0, t.marginalVariance(cols)) / t.variance;
      count++;
    }
    return sum / count;
  });
  const total = raw.reduce((a, b) => a + b, 0);
  return raw.map((v) => (total === 0 ? 1 / raw.length : v / total));
}
