/**
 * MedianPruner against Optuna 3.1's on random histories (NaN, maximize, warm-up, intervals,
 * startup, n_min_trials), and pruning through the Study API as a training loop drives it.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert";
import {
  type FrozenTrial,
  JournalMemoryBackend,
  JournalStorage,
  MedianPruner,
  nanMedian,
  pyStringify,
  RandomSampler,
  Study,
  TrialState,
} from "../core/search/mod.ts";
import { rng } from "./helpers/random.ts";
import { optunaTool, tempDir } from "./fixtures/search/helpers.ts";

interface Case {
  direction: "minimize" | "maximize";
  others: { state: number; value?: number; iv: Record<string, number> }[];
  trial: Record<string, number>;
  options: {
    n_startup_trials: number;
    n_warmup_steps: number;
    interval_steps: number;
    n_min_trials: number;
  };
}

function randomCases(n: number, seed: number): Case[] {
  const next = rng(seed);
  const int = (k: number) => Math.floor(next() * k);
  const value = () => (next() < 0.08 ? NaN : Math.round((next() * 10 - 2) * 1000) / 1000);
  const ivs = () => {
    const out: Record<string, number> = {};
    for (let s = 0; s < 7; s++) if (next() < 0.6) out[String(s)] = value();
    return out;
  };
  return Array.from({ length: n }, () => {
    const direction = next() < 0.5 ? "minimize" : "maximize";
    // Half the trials run worse than the others, so that both decisions are common.
    const shift = next() < 0.5 ? 0 : direction === "minimize" ? 3 : -3;
    const trial = Object.fromEntries(Object.entries(ivs()).map(([k, v]) => [k, v + shift]));
    return {
      direction,
      others: Array.from({ length: 1 + int(9) }, () => {
        const state = [
          TrialState.COMPLETE,
          TrialState.COMPLETE,
          TrialState.PRUNED,
          TrialState.FAIL,
        ][int(4)]!;
        const iv = ivs();
        return state === TrialState.COMPLETE
          ? { state, value: Math.round(next() * 1000) / 100, iv }
          : { state, iv };
      }),
      trial,
      options: {
        n_startup_trials: int(4),
        n_warmup_steps: int(4),
        interval_steps: 1 + int(3),
        n_min_trials: 1 + int(3),
      },
    };
  });
}

function frozen(
  number: number,
  state: number,
  values: number[] | null,
  iv: Record<string, number>,
): FrozenTrial {
  return {
    trialId: number,
    number,
    studyId: 0,
    state: state as TrialState,
    values,
    datetimeStart: null,
    datetimeComplete: null,
    params: {},
    distributions: {},
    userAttrs: {},
    systemAttrs: {},
    intermediateValues: new Map(Object.entries(iv).map(([k, v]) => [Number(k), v])),
  };
}

Deno.test("median pruner: decides as Optuna 3.1's MedianPruner on 400 random histories", async () => {
  const cases = randomCases(400, 21);
  await using dir = await tempDir();
  const file = `${dir.path}/cases.json`;
  // Python's json reads the NaN tokens; JSON.stringify would turn them into null.
  await Deno.writeTextFile(file, pyStringify(cases as never));
  const theirs = (await optunaTool("median", file)) as boolean[];
  const ours = cases.map((c) => {
    const others = c.others.map((o, i) =>
      frozen(i, o.state, o.value === undefined ? null : [o.value], o.iv)
    );
    const trial = frozen(others.length, TrialState.RUNNING, null, c.trial);
    const o = c.options;
    const pruner = new MedianPruner({
      nStartupTrials: o.n_startup_trials,
      nWarmupSteps: o.n_warmup_steps,
      intervalSteps: o.interval_steps,
      nMinTrials: o.n_min_trials,
    });
    return pruner.prune({ trials: [...others, trial], direction: c.direction, trial });
  });
  const differ = cases.map((c, i) => ({ c, ours: ours[i], theirs: theirs[i] })).filter((d) =>
    d.ours !== d.theirs
  );
  deepStrictEqual(differ.slice(0, 3), [], `${differ.length} of ${cases.length} decisions differ`);
  const pruned = ours.filter(Boolean).length;
  ok(pruned > 40 && pruned < 360, `both outcomes are exercised (${pruned} pruned)`);
});

Deno.test("median pruner: nanMedian interpolates like numpy.nanpercentile(…, 50)", () => {
  strictEqual(nanMedian([3, NaN, 1, 2]), 2);
  strictEqual(nanMedian([4, 1, NaN, 2, 3]), 2.5);
  strictEqual(nanMedian([NaN, NaN]), NaN);
  strictEqual(nanMedian([0.1, 0.2]), 0.2 - (0.2 - 0.1) * 0.5);
});

Deno.test("median pruner: a training loop reports epochs, gets pruned, and stores the last value", async () => {
  const study = await Study.open(new JournalStorage(new JournalMemoryBackend()), {
    name: "prune",
    direction: "minimize",
    sampler: new RandomSampler(4),
    pruner: new MedianPruner({ nStartupTrials: 2, nWarmupSteps: 1 }),
  });
  const space = { lr: { type: "float", low: 1e-4, high: 1e-1, log: true } };
  const curves = [[1.0, 0.8, 0.6], [1.2, 0.9, 0.7], [1.5, 1.4, 1.3], [0.9, 0.5, 0.4]];
  const outcome: string[] = [];
  for (const curve of curves) {
    const t = await study.ask(space);
    let pruned = false;
    for (const [epoch, loss] of curve.entries()) {
      await t.report(loss, epoch);
      if (await t.shouldPrune()) {
        pruned = true;
        break;
      }
    }
    const f = await study.tell(
      t,
      pruned ? { state: "pruned" } : { state: "complete", value: curve.at(-1)! },
    );
    outcome.push(`${f.number}:${f.state}:${f.values?.[0]}`);
  }
  // Trial 2 is worse than the median at step 1 (1.4 > 0.85) once warm-up is over.
  deepStrictEqual(outcome, ["0:1:0.6", "1:1:0.7", "2:2:1.4", "3:1:0.4"]);
  strictEqual((await study.bestTrial())?.number, 3);
});
