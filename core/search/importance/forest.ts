/**
 * scikit-learn's `RandomForestRegressor` as Optuna's fANOVA evaluator configures it (squared
 * error, every feature considered at each split, bootstrap, `max_depth` 64, `min_samples_split`
 * 2, `min_samples_leaf` 1), step by step as scikit-learn 1.2 does it: the forest's
 * `RandomState(seed)` draws one seed per tree; each tree draws its bootstrap with
 * `randint(0, n, n)` and its feature order with `rand_r`; features are float32; splits are found
 * with the same introsort, incremental sums and threshold rule. With the same seed the trees
 * match scikit-learn's, so the importances match Optuna's to rounding (tests/importance_test.ts).
 *
 * @module
 */

import { RandomState } from "../mt19937.ts";

/** A fitted regression tree in scikit-learn's `tree_` layout: node `i` is a leaf when `feature[i] < 0`. */
export interface RegressionTree {
  /** The left child of each node (-1 for a leaf). */
  childrenLeft: number[];
  /** The right child of each node (-1 for a leaf). */
  childrenRight: number[];
  /** The column a node splits on (-2 for a leaf). */
  feature: number[];
  /** Rows with `x[feature] <= threshold` go left (-2 for a leaf). */
  threshold: number[];
  /** The node's (weighted) mean target. */
  value: number[];
}

/** The forest's settings (Optuna's fANOVA defaults). */
export interface ForestOptions {
  /** Default 64. */
  nTrees?: number;
  /** Default 64. */
  maxDepth?: number;
  /** `random_state` of the forest, an integer in [0, 2^32). */
  seed: number;
}

// A float32 in scikit-learn, added to float32 feature values in float32 arithmetic.
const FEATURE_THRESHOLD = Math.fround(1e-7);
const EPSILON = 2.220446049250313e-16; // numpy.finfo(float).eps
const RAND_R_MAX = 0x7fffffff;

/** `RandomState.randint(0, high)` (legacy masked rejection sampling on 32-bit draws). */
function randint(rng: RandomState, high: number): number {
  const max = high - 1;
  if (max === 0) return 0;
  let mask = max;
  for (const shift of [1, 2, 4, 8, 16]) mask |= mask >>> shift;
  mask >>>= 0;
  for (;;) {
    const v = (rng.nextUint32() & mask) >>> 0;
    if (v <= max) return v;
  }
}

/** Fits `nTrees` trees on rows `x` (every value is rounded to float32, as scikit-learn does). */
export function fitForest(x: number[][], y: number[], opts: ForestOptions): RegressionTree[] {
  const n = y.length;
  if (n === 0 || x.length !== n) {
    throw new RangeError(`fitForest needs one row per target, got ${x.length} rows, ${n} targets`);
  }
  const xf = x.map((row) => Float32Array.from(row));
  const forest = new RandomState(opts.seed);
  const seeds = Array.from({ length: opts.nTrees ?? 64 }, () => randint(forest, 2147483647));
  return seeds.map((seed) => {
    // The bootstrap and the splitter each start a fresh RandomState(seed), as scikit-learn does.
    const bootstrap = new RandomState(seed);
    const weight = new Float64Array(n);
    for (let k = 0; k < n; k++) weight[randint(bootstrap, n)]! += 1;
    const splitterSeed = randint(new RandomState(seed), RAND_R_MAX);
    return new TreeBuilder(xf, y, weight, opts.maxDepth ?? 64, splitterSeed).build();
  });
}

interface Split {
  pos: number;
  feature: number;
  threshold: number;
  improvement: number;
  impurityLeft: number;
  impurityRight: number;
}

/** scikit-learn's `DepthFirstTreeBuilder` + `BestSplitter` + `MSE` criterion, for one output. */
class TreeBuilder {
  readonly #samples: number[] = [];
  readonly #features: number[];
  readonly #constant: number[];
  readonly #xf: Float64Array;
  #randState: number;
  readonly #weightTotal: number;
  // Criterion state of the current node.
  #start = 0;
  #end = 0;
  #pos = 0;
  #sumTotal = 0;
  #sqSumTotal = 0;
  #weightNode = 0;
  #sumLeft = 0;
  #sumRight = 0;
  #weightLeft = 0;
  #weightRight = 0;

  constructor(
    readonly x: Float32Array[],
    readonly y: number[],
    readonly weight: Float64Array,
    readonly maxDepth: number,
    seed: number,
  ) {
    let total = 0;
    for (let i = 0; i < y.length; i++) {
      if (weight[i] !== 0) this.#samples.push(i);
      total += weight[i]!;
    }
    this.#weightTotal = total;
    const nFeatures = x[0]?.length ?? 0;
    this.#features = Array.from({ length: nFeatures }, (_, f) => f);
    this.#constant = new Array(nFeatures).fill(0);
    this.#xf = new Float64Array(y.length);
    this.#randState = seed >>> 0;
  }

  build(): RegressionTree {
    const tree: RegressionTree = {
      childrenLeft: [],
      childrenRight: [],
      feature: [],
      threshold: [],
      value: [],
    };
    type Item = [
      start: number,
      end: number,
      depth: number,
      parent: number,
      isLeft: boolean,
      impurity: number,
      nConstant: number,
    ];
    const stack: Item[] = [[0, this.#samples.length, 0, -1, false, Infinity, 0]];
    let first = true;
    while (stack.length > 0) {
      const [start, end, depth, parent, isLeft, parentImpurity, nConstant] = stack.pop()!;
      this.#nodeReset(start, end);
      let impurity = parentImpurity;
      let leaf = depth >= this.maxDepth || end - start < 2;
      if (first) {
        impurity = this.#nodeImpurity();
        first = false;
      }
      leaf ||= impurity <= EPSILON;
      let split: Split | undefined;
      let constants = nConstant;
      if (!leaf) {
        [split, constants] = this.#nodeSplit(impurity, nConstant);
        leaf = split.pos >= end || split.improvement + EPSILON < 0;
      }
      const id = tree.value.length;
      if (parent >= 0) (isLeft ? tree.childrenLeft : tree.childrenRight)[parent] = id;
      tree.childrenLeft.push(-1);
      tree.childrenRight.push(-1);
      tree.feature.push(leaf ? -2 : split!.feature);
      tree.threshold.push(leaf ? -2 : split!.threshold);
      tree.value.push(this.#sumTotal / this.#weightNode);
      if (!leaf) {
        stack.push([split!.pos, end, depth + 1, id, false, split!.impurityRight, constants]);
        stack.push([start, split!.pos, depth + 1, id, true, split!.impurityLeft, constants]);
      }
    }
    return tree;
  }

  #randInt(low: number, high: number): number {
    let s = this.#randState === 0 ? 1 : this.#randState;
    s = (s ^ (s << 13)) >>> 0;
    s = (s ^ (s >>> 17)) >>> 0;
    s = (s ^ (s << 5)) >>> 0;
    this.#randState = s;
    return low + ((s % (RAND_R_MAX + 1)) % (high - low));
  }

  #nodeReset(start: number, end: number): void {
    this.#start = start;
    this.#end = end;
    let sum = 0, sq = 0, w = 0;
    for (let p = start; p < end; p++) {
      const i = this.#samples[p]!;
      const wy = this.weight[i]! * this.y[i]!;
      sum += wy;
      sq += wy * this.y[i]!;
      w += this.weight[i]!;
    }
    this.#sumTotal = sum;
    this.#sqSumTotal = sq;
    this.#weightNode = w;
    this.#reset();
  }

  #reset(): void {
    this.#pos = this.#start;
    this.#weightLeft = 0;
    this.#weightRight = this.#weightNode;
    this.#sumLeft = 0;
    this.#sumRight = this.#sumTotal;
  }

  #nodeImpurity(): number {
    const mean = this.#sumTotal / this.#weightNode;
    return this.#sqSumTotal / this.#weightNode - mean * mean;
  }

  /** Moves the split position to `newPos`, from whichever end is nearer (as scikit-learn). */
  #update(newPos: number): void {
    const s = this.#samples;
    if (newPos - this.#pos <= this.#end - newPos) {
      for (let p = this.#pos; p < newPos; p++) {
        const i = s[p]!;
        this.#sumLeft += this.weight[i]! * this.y[i]!;
        this.#weightLeft += this.weight[i]!;
      }
    } else {
      this.#sumLeft = this.#sumTotal;
      this.#weightLeft = this.#weightNode;
      for (let p = this.#end - 1; p >= newPos; p--) {
        const i = s[p]!;
        this.#sumLeft -= this.weight[i]! * this.y[i]!;
        this.#weightLeft -= this.weight[i]!;
      }
    }
    this.#weightRight = this.#weightNode - this.#weightLeft;
    this.#sumRight = this.#sumTotal - this.#sumLeft;
    this.#pos = newPos;
  }

  #childrenImpurity(): [number, number] {
    let sqLeft = 0;
    for (let p = this.#start; p < this.#pos; p++) {
      const i = this.#samples[p]!;
      sqLeft += this.weight[i]! * this.y[i]! * this.y[i]!;
    }
    const sqRight = this.#sqSumTotal - sqLeft;
    const ml = this.#sumLeft / this.#weightLeft;
    const mr = this.#sumRight / this.#weightRight;
    return [sqLeft / this.#weightLeft - ml * ml, sqRight / this.#weightRight - mr * mr];
  }

  /** `BestSplitter.node_split`: every feature in a random order, the best threshold of each. */
  #nodeSplit(impurity: number, nKnownConstants: number): [Split, number] {
    const { x } = this;
    const samples = this.#samples;
    const features = this.#features;
    const xf = this.#xf;
    const start = this.#start, end = this.#end;
    const nFeatures = features.length;
    let best: Split = {
      pos: end,
      feature: 0,
      threshold: 0,
      improvement: -Infinity,
      impurityLeft: Infinity,
      impurityRight: Infinity,
    };
    let bestProxy = -Infinity;
    let fI = nFeatures;
    let visited = 0, foundConstants = 0, drawnConstants = 0;
    let totalConstants = nKnownConstants;
    while (
      fI > totalConstants &&
      (visited < nFeatures || visited <= foundConstants + drawnConstants)
    ) {
      visited++;
      let fJ = this.#randInt(drawnConstants, fI - foundConstants);
      if (fJ < nKnownConstants) {
        [features[drawnConstants], features[fJ]] = [features[fJ]!, features[drawnConstants]!];
        drawnConstants++;
        continue;
      }
      fJ += foundConstants;
      const feature = features[fJ]!;
      for (let p = start; p < end; p++) xf[p] = x[samples[p]!]![feature]!;
      sortSamples(xf, samples, start, end - start);
      if (xf[end - 1]! <= Math.fround(xf[start]! + FEATURE_THRESHOLD)) {
        [features[fJ], features[totalConstants]] = [features[totalConstants]!, features[fJ]!];
        foundConstants++;
        totalConstants++;
        continue;
      }
      fI--;
      [features[fI], features[fJ]] = [features[fJ]!, features[fI]!];
      this.#reset();
      let p = start;
      while (p < end) {
        while (p + 1 < end && xf[p + 1]! <= Math.fround(xf[p]! + FEATURE_THRESHOLD)) p++;
        p++;
        if (p >= end) continue;
        this.#update(p);
        const proxy = (this.#sumLeft * this.#sumLeft) / this.#weightLeft +
          (this.#sumRight * this.#sumRight) / this.#weightRight;
        if (proxy > bestProxy) {
          bestProxy = proxy;
          let threshold = xf[p - 1]! / 2 + xf[p]! / 2;
          if (threshold === xf[p] || !Number.isFinite(threshold)) threshold = xf[p - 1]!;
          best = { ...best, pos: p, feature, threshold };
        }
      }
    }
    if (best.pos < end) {
      let p = start, partitionEnd = end;
      while (p < partitionEnd) {
        if (x[samples[p]!]![best.feature]! <= best.threshold) p++;
        else {
          partitionEnd--;
          [samples[p], samples[partitionEnd]] = [samples[partitionEnd]!, samples[p]!];
        }
      }
      this.#reset();
      this.#update(best.pos);
      const [left, right] = this.#childrenImpurity();
      const wn = this.#weightNode;
      best.impurityLeft = left;
      best.impurityRight = right;
      best.improvement = (wn / this.#weightTotal) *
        (impurity - (this.#weightRight / wn) * right - (this.#weightLeft / wn) * left);
    }
    // Constant features found here stay known to this node's children (and siblings keep theirs).
    for (let k = 0; k < nKnownConstants; k++) features[k] = this.#constant[k]!;
    for (let k = nKnownConstants; k < nKnownConstants + foundConstants; k++) {
      this.#constant[k] = features[k]!;
    }
    return [best, totalConstants];
  }
}

/**
 * scikit-learn's introsort (median-of-3, three-way partition, heapsort past depth 2·log2 n: its
 * `log` is `ln(x) / ln(2)`). Not stable, so it decides the order of equal values, which decides
 * the order of the sums, which can break a tie between two splits.
 */
function sortSamples(xf: Float64Array, samples: number[], offset: number, n: number): void {
  if (n === 0) return;
  introsort(xf, samples, offset, n, 2 * Math.trunc(Math.log(n) / Math.log(2)));
}

function swap(xf: Float64Array, samples: number[], i: number, j: number): void {
  [xf[i], xf[j]] = [xf[j]!, xf[i]!];
  [samples[i], samples[j]] = [samples[j]!, samples[i]!];
}

function median3(xf: Float64Array, o: number, n: number): number {
  const a = xf[o]!, b = xf[o + Math.floor(n / 2)]!, c = xf[o + n - 1]!;
  if (a < b) return b < c ? b : a < c ? c : a;
  if (b < c) return a < c ? a : c;
  return b;
}

function introsort(xf: Float64Array, s: number[], o: number, n: number, maxd: number): void {
  while (n > 1) {
    if (maxd <= 0) {
      heapsort(xf, s, o, n);
      return;
    }
    maxd--;
    const pivot = median3(xf, o, n);
    let i = 0, l = 0, r = n;
    while (i < r) {
      if (xf[o + i]! < pivot) swap(xf, s, o + i++, o + l++);
      else if (xf[o + i]! > pivot) swap(xf, s, o + i, o + --r);
      else i++;
    }
    introsort(xf, s, o, l, maxd);
    o += r;
    n -= r;
  }
}

function siftDown(xf: Float64Array, s: number[], o: number, start: number, end: number): void {
  let root = start;
  for (;;) {
    const child = root * 2 + 1;
    let max = root;
    if (child < end && xf[o + max]! < xf[o + child]!) max = child;
    if (child + 1 < end && xf[o + max]! < xf[o + child + 1]!) max = child + 1;
    if (max === root) return;
    swap(xf, s, o + root, o + max);
    root = max;
  }
}

function heapsort(xf: Float64Array, s: number[], o: number, n: number): void {
  for (let start = Math.floor((n - 2) / 2);; start--) {
    siftDown(xf, s, o, start, n);
    if (start === 0) break;
  }
  for (let end = n - 1; end > 0; end--) {
    swap(xf, s, o, o + end);
    siftDown(xf, s, o, 0, end);
  }
}
