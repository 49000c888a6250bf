/**
 * TPE against Optuna: the spec's Parzen and end-to-end vectors for five Optuna versions, the
 * numpy pieces it depends on (RandomState, argsort), a seeded run reproducing Optuna 3.1's
 * TPESampler trial for trial, its good/bad split, and TPE beating random search on Branin.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert";
import {
  type Choice,
  defaultGamma,
  defaultWeights,
  distributionFromJson,
  type FrozenTrial,
  JournalMemoryBackend,
  JournalStorage,
  numpyArgsort,
  observedTrials,
  parseSearchSpace,
  ParzenEstimator,
  pyStringify,
  RandomSampler,
  RandomState,
  type Sampler,
  splitTrials,
  Study,
  TPE_PROFILES,
  type TpeOptions,
  TpeSampler,
} from "../core/search/mod.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { rng } from "./helpers/random.ts";
import { optunaTool, python, tpeVectors } from "./fixtures/search/helpers.ts";

/** Which of our profiles reproduces each vector file's Optuna version (spec §3.8). */
const VERSIONS: [string, keyof typeof TPE_PROFILES][] = [
  ["3.1.0", "3.1"],
  ["3.6.0", "3.5"],
  ["4.6.0", "3.5"],
  ["4.8.0", "4.7"],
  ["4.9.0", "4.9"],
];

// deno-lint-ignore no-explicit-any
type Json = any;

async function vectors(version: string): Promise<Json> {
  return await tpeVectors(version);
}

Deno.test("tpe: RandomState reproduces numpy's legacy MT19937 doubles", async () => {
  const seeds = [0, 1, 42, 12345, 4294967295];
  const ours = seeds.map((s) => {
    const r = new RandomState(s);
    return Array.from({ length: 700 }, () => r.random());
  });
  const code = "import json,sys,numpy as np\n" +
    "print(json.dumps([np.random.RandomState(s).random_sample(700).tolist() for s in json.load(sys.stdin)]))";
  deepStrictEqual(ours, JSON.parse(await python(["-c", code], JSON.stringify(seeds))));
});

Deno.test("tpe: numpyArgsort orders ties exactly as numpy.argsort", async () => {
  const next = rng(3);
  const arrays = Array.from({ length: 200 }, (_, i) => {
    const n = 1 + Math.floor(next() * 120);
    const k = 1 + Math.floor(next() * 6);
    return Array.from({ length: n }, () => (i % 4 === 0 ? next() : Math.floor(next() * k) / k));
  });
  const code = "import json,sys,numpy as np\n" +
    "print(json.dumps([np.argsort(np.array(a, dtype=float)).tolist() for a in json.load(sys.stdin)]))";
  deepStrictEqual(
    arrays.map(numpyArgsort),
    JSON.parse(await python(["-c", code], JSON.stringify(arrays))),
  );
});

for (const [version, profile] of VERSIONS) {
  Deno.test(`tpe: Parzen estimators equal Optuna ${version}'s vectors (profile ${profile})`, async () => {
    for (const c of (await vectors(version)).parzen_cases) {
      const dist = distributionFromJson(c.distribution);
      const pe = new ParzenEstimator(c.observations as number[], dist, {
        profile: TPE_PROFILES[profile],
        priorWeight: 1,
        considerMagicClip: true,
        considerEndpoints: false,
        weights: defaultWeights,
      });
      const label = `parzen ${c.case} optuna ${version}`;
      // The vectors are Optuna's float64 results; we compute the same operations in float64,
      // so only libm last-bit differences (erf, log, exp) remain.
      const tol = { atol: 1e-13, rtol: 1e-12 };
      assertClose(pe.weights, c.weights, { ...tol, label: `${label} weights` });
      if (c.mus) assertClose(pe.mus, c.mus, { ...tol, label: `${label} mus` });
      if (c.sigmas) assertClose(pe.sigmas, c.sigmas, { ...tol, label: `${label} sigmas` });
      if (c.categorical_rows) {
        assertClose(pe.categoricalRows.flat(), c.categorical_rows.flat(), {
          ...tol,
          label: `${label} rows`,
        });
      }
      const x = (c.x as Choice[]).map((
        v,
      ) => (dist.kind === "categorical" ? Number(v) : v as number));
      assertClose(pe.logPdf(x), c.log_pdf, { ...tol, label: `${label} log_pdf` });
    }
  });

  Deno.test(`tpe: a seeded sample_independent equals Optuna ${version}'s end-to-end vectors`, async () => {
    const e2e = (await vectors(version)).end_to_end;
    const xDist = distributionFromJson({
      name: "FloatDistribution",
      attributes: { low: -5, high: 5 },
    });
    const cDist = distributionFromJson({
      name: "CategoricalDistribution",
      attributes: { choices: ["a", "b", "c"] },
    });
    const trials: FrozenTrial[] = e2e.trials.map((t: Json, i: number) => ({
      trialId: i,
      number: t.number,
      studyId: 0,
      state: t.state,
      values: t.value === null ? null : [t.value],
      datetimeStart: null,
      datetimeComplete: null,
      params: t.params,
      distributions: Object.fromEntries(
        Object.keys(t.params).map((k) => [k, k === "x" ? xDist : cDist]),
      ),
      userAttrs: {},
      systemAttrs: {},
      intermediateValues: new Map(
        Object.entries(t.intermediate_values).map(([k, v]) => [Number(k), v as number]),
      ),
    }));
    const current: FrozenTrial = {
      ...trials[0]!,
      trialId: 30,
      number: 30,
      state: 0,
      values: null,
      params: {},
      distributions: {},
    };
    for (const r of e2e.results) {
      const sampler = new TpeSampler({ seed: r.seed, profile });
      const got = sampler.sampleIndependent(
        { trials: [...trials, current], direction: e2e.direction, trial: current },
        r.param,
        distributionFromJson(r.distribution),
      );
      const label = `tpe end-to-end optuna ${version} seed ${r.seed} param ${r.param}`;
      if (typeof r.chosen === "string") strictEqual(got, r.chosen, label);
      // Same candidate; Optuna >= 4.6 computes the truncated-normal inverse slightly differently.
      else assertClose([got as number], [r.chosen], { atol: 0, rtol: 1e-14, label });
    }
  });
}

/** The objective of optuna_tool.py's tpe-run. */
const BRANIN_SPACE = parseSearchSpace({
  x: { type: "float", low: -5, high: 10 },
  y: { type: "float", low: 0, high: 15 },
  k: { type: "int", low: 1, high: 64, log: true },
  s: { type: "float", low: 0, high: 1, step: 0.1 },
  c: { type: "categorical", choices: ["a", "b", "c"] },
});

function branin(x: number, y: number): number {
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  return (y - b * x * x + c * x - 6) ** 2 + 10 * (1 - 1 / (8 * Math.PI)) * Math.cos(x) + 10;
}

async function run(sampler: Sampler, n: number, objective: (p: Json) => number) {
  const study = await Study.open(new JournalStorage(new JournalMemoryBackend()), {
    name: "bench",
    direction: "minimize",
    sampler,
    pruner: null,
  });
  const out: { params: Json; value: number }[] = [];
  for (let i = 0; i < n; i++) {
    const t = await study.ask(BRANIN_SPACE);
    const value = objective(t.params);
    await study.tell(t, { state: "complete", value });
    out.push({ params: { ...t.params }, value });
  }
  return out;
}

/**
 * Acquisition scores (log l − log g, in nats) of two different candidate values closer than this
 * are a tie that float rounding decides. Optuna's log densities go through numpy's BLAS
 * (`np.inner` for categorical rows, summation order) and libm; a different BLAS or CPU moves a
 * score by a few ulps (~1e-15 at the scores' magnitude of 1–10), while two genuinely different
 * candidates differ by far more (the smallest non-tie gap in these runs is printed on failure).
 */
const TIE = 1e-9;

/** The winner's score minus the best score of a candidate of another value (null: no other). */
function scoreGap(candidates: readonly number[], scores: readonly number[], chosen: number) {
  let other = -Infinity;
  for (let i = 0; i < candidates.length; i++) {
    if (candidates[i] !== candidates[chosen]) other = Math.max(other, scores[i]!);
  }
  return other === -Infinity ? null : scores[chosen]! - other;
}

type Trial = { params: Json; gaps: Record<string, number | null> };

/** Our run of the Branin objective of optuna_tool.py's tpe-run, recording each choice's gap. */
async function ourTpeRun(
  seed: number,
  n: number,
  options: TpeOptions = {},
  space = BRANIN_SPACE,
  objective = (p: Json) =>
    branin(p.x, p.y) + Math.abs(Math.log2(p.k) - 3) + p.s + (p.c === "b" ? 0 : 1),
): Promise<Trial[]> {
  const gaps: Record<string, number | null>[] = [];
  const sampler = new TpeSampler({
    seed,
    profile: "3.1",
    ...options,
    observe: (c) => {
      gaps[gaps.length - 1]![c.param] = scoreGap(c.candidates, c.scores, c.chosen);
    },
  });
  const study = await Study.open(new JournalStorage(new JournalMemoryBackend()), {
    name: "tpe-run",
    direction: "minimize",
    sampler,
    pruner: null,
  });
  const out: Trial[] = [];
  for (let i = 0; i < n; i++) {
    gaps.push({});
    const t = await study.ask(space);
    await study.tell(t, { state: "complete", value: objective(t.params as Json) });
    out.push({ params: { ...t.params }, gaps: gaps[i]! });
  }
  return out;
}

/**
 * Compares two seeded runs trial by trial: where they first part, whether every parameter that
 * differs there was a near-tie (gap ≤ TIE on either side), the first near-tie, and the smallest
 * gap that is not a tie (how far the real choices are from the tolerance).
 */
function compareRuns(ours: Trial[], theirs: Trial[]) {
  const differs = (a: Json, b: Json, k: string) =>
    typeof b[k] === "number" && !Number.isInteger(b[k])
      ? Math.abs(a[k] - b[k]) > 1e-14 + 1e-12 * Math.abs(b[k])
      : a[k] !== b[k];
  const tie = (i: number, k: string) =>
    [ours[i]!.gaps[k], theirs[i]!.gaps[k]].some((g) => g !== undefined && g !== null && g <= TIE);
  const n = Math.min(ours.length, theirs.length);
  let partedAt: number | null = null;
  let partedOn: string[] = [];
  let tieAt: number | null = null;
  let smallestGap = Infinity;
  for (let i = 0; i < n && partedAt === null; i++) {
    const keys = Object.keys(theirs[i]!.params);
    if (tieAt === null && keys.some((k) => tie(i, k))) tieAt = i;
    for (const g of [...Object.values(ours[i]!.gaps), ...Object.values(theirs[i]!.gaps)]) {
      if (g !== null && g > TIE) smallestGap = Math.min(smallestGap, g);
    }
    partedOn = keys.filter((k) => differs(ours[i]!.params, theirs[i]!.params, k));
    if (partedOn.length > 0) partedAt = i;
  }
  const byTie = partedAt !== null && partedOn.every((k) => tie(partedAt!, k));
  return { partedAt, partedOn, byTie, tieAt, smallestGap, n };
}

Deno.test("tpe: a seeded run reproduces Optuna 3.1's TPESampler(seed) trial for trial, parting only at a tie", async () => {
  const n = 45;
  // Seed 11 has an exact tie at trial 17 ("a" and "c" score alike): with Debian's reference BLAS
  // both runs pick the first candidate; with OpenBLAS on some CPUs Optuna's rounding picks the
  // other, and the runs part there, by rounding alone.
  for (const seed of [3, 11, 29]) {
    const theirs = (await optunaTool("tpe-run", String(seed), String(n))) as Trial[];
    const r = compareRuns(await ourTpeRun(seed, n), theirs);
    const label = `seed ${seed}: parted at trial ${r.partedAt} on ${r.partedOn}, first tie ` +
      `within ${TIE} at trial ${r.tieAt}, smallest gap that is no tie ${r.smallestGap}`;
    // Equal trial for trial up to the first near-tie, and past it until rounding decides one.
    ok(r.partedAt === null || (r.byTie && r.tieAt !== null && r.partedAt >= r.tieAt), label);
    // Real choices lie far from the tolerance, so it separates rounding from the algorithm.
    ok(r.smallestGap > 1e3 * TIE, label);
  }
});

/** optuna_tool.py's conditional_objective: `optimizer` chooses which of beta1/momentum exists. */
const CONDITIONAL_SPACE = parseSearchSpace({
  optimizer: {
    type: "categorical",
    choices: ["adam", "sgd"],
    conditional: {
      adam: { beta1: { type: "float", low: 0.5, high: 0.999 } },
      sgd: { momentum: { type: "float", low: 0, high: 0.99 } },
    },
  },
  lr: { type: "float", low: 1e-4, high: 1, log: true },
});

function conditionalObjective(p: Json): number {
  const extra = p.optimizer === "adam"
    ? (p.beta1 - 0.9) ** 2 * 10
    : (p.momentum - 0.5) ** 2 * 10 + 0.2;
  return extra + (Math.log10(p.lr) + 2) ** 2;
}

Deno.test("tpe: a conditional space reproduces Optuna 3.1's define-by-run trials, each parameter learnt from the trials that hold it", async () => {
  const n = 40;
  for (const seed of [5, 17]) {
    const theirs = (await optunaTool("tpe-run", String(seed), String(n), "conditional")) as Trial[];
    const ours = await ourTpeRun(seed, n, {}, CONDITIONAL_SPACE, conditionalObjective);
    for (const [i, t] of ours.entries()) {
      // Only the branch's own keys, in Optuna's suggestion order.
      deepStrictEqual(
        Object.keys(t.params).sort(),
        Object.keys(theirs[i]!.params).sort(),
        `trial ${i}`,
      );
      const own = t.params.optimizer === "adam" ? "beta1" : "momentum";
      deepStrictEqual(Object.keys(t.params), ["optimizer", own, "lr"], `trial ${i}`);
    }
    const r = compareRuns(ours, theirs);
    const label = `seed ${seed}: parted at trial ${r.partedAt} on ${r.partedOn}, first tie ` +
      `at ${r.tieAt}, smallest gap that is no tie ${r.smallestGap}`;
    ok(r.partedAt === null || (r.byTie && r.tieAt !== null && r.partedAt >= r.tieAt), label);
    ok(r.smallestGap > 1e3 * TIE, label);
    // Past the 10 random startup trials TPE chose both branches' keys from their own histories.
    const late = ours.slice(10).map((t) => t.params.optimizer);
    ok(late.includes("adam") && late.includes("sgd"), `${label}; late choices ${late}`);
  }
});

Deno.test("tpe: rounding that breaks seed 11's tie the other way parts the runs there, which passes", async () => {
  // What OpenBLAS did on the machine that found this: Optuna picks "a" at trial 17, we pick "c".
  // optuna_tool.py's flip-ties raises the runner-up's score by a few ulps at every near-tie.
  const n = 30;
  const theirs = (await optunaTool("tpe-run", "11", String(n), "flip-ties")) as Trial[];
  const r = compareRuns(await ourTpeRun(11, n), theirs);
  deepStrictEqual([r.partedAt, r.partedOn, r.byTie], [17, ["c"], true], JSON.stringify(r));
  strictEqual(theirs[17]!.params.c, "a");
});

Deno.test("tpe: the seeded comparison fails a sampler with one term changed", async () => {
  const n = 45;
  const theirs = (await optunaTool("tpe-run", "3", String(n))) as Trial[];
  // Optuna 3.5's 1/σ in the kernel density instead of 3.1's: one factor of the Parzen estimator.
  const broken = { profile: { ...TPE_PROFILES["3.1"], logSigma: true } };
  const r = compareRuns(await ourTpeRun(3, n, broken), theirs);
  ok(r.partedAt !== null && !r.byTie, `parted at ${r.partedAt} on ${r.partedOn}, tie: ${r.byTie}`);
});

Deno.test("tpe: beats random search on Branin (median best of 10 seeds after 40 trials)", async () => {
  const best = async (make: (seed: number) => Sampler) => {
    const out: number[] = [];
    for (let seed = 0; seed < 10; seed++) {
      const trials = await run(make(seed), 40, (p) => branin(p.x, p.y));
      out.push(Math.min(...trials.map((t) => t.value)));
    }
    out.sort((a, b) => a - b);
    return (out[4]! + out[5]!) / 2;
  };
  const tpe = await best((seed) => new TpeSampler({ seed }));
  const random = await best((seed) => new RandomSampler(seed + 1000));
  ok(tpe < random, `median best: TPE ${tpe} vs random ${random}`);
  ok(tpe < 1.5, `TPE gets near Branin's minimum 0.398, got ${tpe}`);
});

Deno.test("tpe: the good/bad split ranks COMPLETE and PRUNED trials as Optuna 3.1 does", async () => {
  const next = rng(8);
  const histories = Array.from({ length: 60 }, () => {
    const direction = next() < 0.5 ? "minimize" : "maximize";
    // Few COMPLETE trials in some histories, so that PRUNED ones reach the good group.
    const pComplete = next() * 0.5;
    const trials = Array.from({ length: 3 + Math.floor(next() * 40) }, () => {
      const r = next();
      const iv: Record<string, number> = {};
      const steps = Math.floor(next() * 4);
      for (let s = 0; s < steps; s++) {
        iv[String(s)] = next() < 0.1 ? NaN : Math.round(next() * 20) / 4;
      }
      if (r < pComplete) return { state: 1, value: Math.round(next() * 20) / 4, iv };
      if (r < 0.9) return { state: 2, iv };
      return { state: 3, iv };
    });
    return { direction, trials };
  });
  const code = "import json,sys,warnings\nwarnings.simplefilter('ignore')\nimport optuna\n" +
    "from optuna.samplers._tpe.sampler import _get_observation_pairs, _split_observation_pairs, default_gamma\n" +
    "from optuna.trial import create_trial, TrialState\nfrom optuna.distributions import FloatDistribution\n" +
    "optuna.logging.set_verbosity(optuna.logging.ERROR)\nout=[]\n" +
    "for h in json.loads(sys.stdin.read()):\n  s=optuna.create_study(direction=h['direction'])\n" +
    "  for t in h['trials']:\n    s.add_trial(create_trial(state=TrialState(t['state']), value=t.get('value'), " +
    "params={'x': 0.5}, distributions={'x': FloatDistribution(0, 1)}, " +
    "intermediate_values={int(k): v for k, v in t['iv'].items()}))\n" +
    "  values, scores, _ = _get_observation_pairs(s, ['x'])\n  n=len(scores)\n" +
    "  below, _ = _split_observation_pairs(scores, default_gamma(n), None)\n" +
    "  kept=[t.number for t in s.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))]\n" +
    "  out.append([kept[i] for i in below])\nprint(json.dumps(out))";
  const theirs = JSON.parse(
    await python(["-c", code], pyStringify(histories as never)),
  ) as number[][];
  const x = distributionFromJson({ name: "FloatDistribution", attributes: { low: 0, high: 1 } });
  for (const [h, hist] of histories.entries()) {
    const trials: FrozenTrial[] = hist.trials.map((t, i) => ({
      trialId: i,
      number: i,
      studyId: 0,
      state: t.state as 1 | 2 | 3,
      values: "value" in t ? [t.value!] : null,
      datetimeStart: null,
      datetimeComplete: null,
      params: { x: 0.5 },
      distributions: { x },
      userAttrs: {},
      systemAttrs: {},
      intermediateValues: new Map(Object.entries(t.iv).map(([k, v]) => [Number(k), v])),
    }));
    const observed = observedTrials(trials);
    const { below } = splitTrials(
      observed,
      hist.direction as "minimize" | "maximize",
      defaultGamma(observed.length),
    );
    deepStrictEqual(
      below.map((t) => t.number),
      theirs[h],
      `split of history ${h} (${hist.direction})`,
    );
  }
});
