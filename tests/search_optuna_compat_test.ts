/**
 * Both directions with real Optuna 3.1 on one journal file: Optuna writes a study, we load and
 * continue it (TPE + median pruning, a failure, attributes), Optuna loads our continuation and
 * sees exactly our trials, then continues it itself and we read that back.
 */

import { ok, strictEqual } from "node:assert";
import {
  MedianPruner,
  openJournalStorage,
  Study,
  TpeSampler,
  type Trial,
  TrialState,
} from "../core/search/mod.ts";
import { assertSameDump, dumpReplay, optunaTool, tempDir } from "./fixtures/search/helpers.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

/** optuna_tool.py's objective, step for step. */
const SPACE = {
  x: { type: "float", low: -5, high: 5 },
  lr: { type: "float", low: 1e-4, high: 1e-1, log: true },
  width: { type: "int", low: 64, high: 512, step: 64 },
  opt: { type: "categorical", choices: ["adam", "sgd", "lamb"] },
};

async function objective(trial: Trial): Promise<number | "pruned"> {
  const p = trial.params as Json;
  const base = (p.x - 1) ** 2 + (Math.log10(p.lr) + 2) ** 2 + Math.abs(p.width - 256) / 256 +
    ({ adam: 0, sgd: 0.5, lamb: 0.25 } as Json)[p.opt];
  for (let step = 0; step < 3; step++) {
    await trial.report(base + 1 / (step + 1), step);
    if (await trial.shouldPrune()) return "pruned";
  }
  return base;
}

Deno.test("compat: we continue a study Optuna wrote, and Optuna continues ours", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/shared.log`;
  // 1. Real Optuna creates the study and runs 12 trials (TPE, MedianPruner).
  const written = (await optunaTool("optimize", path, "compat", "12", "1")) as Json[];
  strictEqual(written[0].trials.length, 12);
  const storage = await openJournalStorage(path, { fsync: false });
  assertSameDump(dumpReplay(storage.replay), written, "our replay of Optuna's journal");
  // 2. We continue it: 12 trials with the same objective, one failure, one user attr.
  const study = await Study.open(storage, {
    name: "compat",
    direction: "minimize",
    sampler: new TpeSampler({ seed: 2 }),
    pruner: new MedianPruner({ nStartupTrials: 3 }),
  });
  const states: number[] = [];
  for (let k = 0; k < 12; k++) {
    const trial = await study.ask(SPACE);
    await trial.setUserAttr("worker", "deno");
    const r = k === 5 ? "fail" : await objective(trial);
    const done = await study.tell(
      trial,
      r === "fail"
        ? { state: "fail" }
        : r === "pruned"
        ? { state: "pruned" }
        : { state: "complete", value: r },
    );
    strictEqual(done.number, 12 + k, "numbers continue Optuna's");
    states.push(done.state);
  }
  ok(
    states.includes(TrialState.PRUNED) && states.includes(TrialState.COMPLETE) &&
      states.includes(TrialState.FAIL),
  );
  // 3. Optuna loads our continuation: trials, params, distributions, values, states,
  //    intermediate values and attributes equal ours.
  const [loaded] = (await optunaTool("dump-all", path)) as Json[];
  assertSameDump(dumpReplay(storage.replay), loaded, "Optuna's replay of our continuation");
  // 4. Optuna continues our journal; we read its trials back exactly.
  const continued = (await optunaTool("optimize", path, "compat", "4", "3")) as Json[];
  strictEqual(continued[0].trials.length, 28);
  await storage.sync();
  assertSameDump(dumpReplay(storage.replay), continued, "our replay after Optuna continued");
  await storage.close();
});
