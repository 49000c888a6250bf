/**
 * Random and grid samplers and the search-space file: RandomSampler(seed) draws what Optuna's
 * draws for every distribution kind; the grid covers every point once, stops, and shares a
 * journal with Optuna's GridSampler; the space file is validated with clear errors.
 */

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert";
import {
  gridOf,
  GridSampler,
  JournalMemoryBackend,
  JournalStorage,
  openJournalStorage,
  parseSearchSpace,
  RandomSampler,
  Study,
  TrialState,
} from "../core/search/mod.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { optunaTool, tempDir } from "./fixtures/search/helpers.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test("random sampler: a seeded run draws what Optuna's RandomSampler(seed) draws", async () => {
  const space = parseSearchSpace({
    f: { type: "float", low: -3, high: 7.5 },
    flog: { type: "float", low: 1e-5, high: 1, log: true },
    fstep: { type: "float", low: 0, high: 1, step: 0.3 },
    i: { type: "int", low: -4, high: 9 },
    istep: { type: "int", low: 64, high: 512, step: 64 },
    ilog: { type: "int", low: 1, high: 1000, log: true },
    c: { type: "categorical", choices: ["adam", "sgd", null, 3, 1.5, true] },
    single: { type: "float", low: 2, high: 2 },
  });
  const n = 40;
  const theirs = (await optunaTool("random-run", "17", String(n))) as Json[];
  const study = await Study.open(new JournalStorage(new JournalMemoryBackend()), {
    name: "random",
    direction: "minimize",
    sampler: new RandomSampler(17),
    pruner: null,
  });
  for (let k = 0; k < n; k++) {
    const t = await study.ask(space);
    await study.tell(t, { state: "complete", value: 0 });
    const label = `random sampler seed 17 trial ${k}`;
    for (const name of ["fstep", "i", "istep", "ilog", "c", "single"]) {
      strictEqual(t.params[name], theirs[k][name], `${label} ${name}`);
    }
    // exp/log go through V8's and glibc's libm, which may differ in the last bit.
    assertClose([t.params.f as number, t.params.flog as number], [theirs[k].f, theirs[k].flog], {
      atol: 0,
      rtol: 1e-14,
      label,
    });
  }
});

Deno.test("grid sampler: every point once, then the study stops", async () => {
  const space = parseSearchSpace({
    opt: { type: "categorical", choices: ["adam", "sgd"] },
    width: { type: "int", low: 64, high: 256, step: 64 },
    lr: { type: "float", low: 1e-4, high: 1e-2, log: true, grid: [1e-4, 1e-3, 1e-2] },
  });
  const grid = gridOf(space);
  deepStrictEqual(grid, {
    opt: ["adam", "sgd"],
    width: [64, 128, 192, 256],
    lr: [1e-4, 1e-3, 1e-2],
  });
  const sampler = new GridSampler(grid, 5);
  const study = await Study.open(new JournalStorage(new JournalMemoryBackend()), {
    name: "grid",
    direction: "maximize",
    sampler,
    pruner: null,
  });
  const seen = new Set<string>();
  while (!study.stopRequested) {
    const t = await study.ask(space);
    seen.add(JSON.stringify([t.params.lr, t.params.opt, t.params.width]));
    deepStrictEqual(Object.keys(t.frozen.systemAttrs).slice(0, 2), ["search_space", "grid_id"]);
    await study.tell(t, { state: "complete", value: seen.size });
    ok(seen.size <= 24, "no more trials than grid points");
  }
  strictEqual(seen.size, 24, "all 2·4·3 points, none twice");
  strictEqual(sampler.valueAt(0, "lr"), 1e-4);
  strictEqual(sampler.valueAt(23, "width"), 256);
});

Deno.test("grid sampler: Optuna's GridSampler finishes a grid we started, without repeats", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/grid.log`;
  const space = parseSearchSpace({
    opt: { type: "categorical", choices: ["adam", "sgd", "lamb"] },
    width: { type: "int", low: 64, high: 192, step: 64 },
    drop: { type: "float", low: 0.1, high: 0.3, step: 0.1 },
  });
  const grid = gridOf(space);
  deepStrictEqual(grid.drop, [0.1, 0.2, 0.3], "decimal steps");
  const storage = await openJournalStorage(path, { fsync: false });
  const study = await Study.open(storage, {
    name: "g",
    direction: "minimize",
    sampler: new GridSampler(grid, 1),
    pruner: null,
  });
  for (let k = 0; k < 10; k++) {
    const t = await study.ask(space);
    await study.tell(t, { state: "complete", value: k });
  }
  const dump = (await optunaTool("grid", path, "g", JSON.stringify(grid))) as Json[];
  const trials = dump[0].trials as Json[];
  strictEqual(trials.length, 27, "Optuna ran exactly the 17 missing points and stopped");
  const points = new Set(
    trials.map((t) => JSON.stringify([t.params.opt, t.params.width, t.params.drop])),
  );
  strictEqual(points.size, 27, "no grid point twice");
  ok(
    trials.every((t) =>
      t.state === TrialState.COMPLETE && typeof t.system_attrs.grid_id === "number"
    ),
  );
  await storage.sync();
  strictEqual(storage.replay.studyTrialList(0).length, 27, "we read Optuna's grid trials back");
  await storage.close();
});

Deno.test("search space: parses the JSON file and names what is wrong", () => {
  const s = parseSearchSpace(
    '{"lr": {"type":"float","low":1e-4,"high":1e-2,"log":true}, "width": {"type":"int","low":64,"high":512,"step":64},' +
      ' "optimizer": {"type":"categorical","choices":["adam","sgd"]}}',
  );
  deepStrictEqual(
    s.params.map((p) => p.name),
    ["lr", "width", "optimizer"],
    "key order is suggestion order",
  );
  deepStrictEqual(s.params[1]!.distribution, {
    kind: "int",
    low: 64,
    high: 512,
    step: 64,
    log: false,
  });
  throws(() => gridOf(s), /parameter "lr": a float without "step" needs an explicit "grid"/);
  throws(
    () => parseSearchSpace({ a: { type: "uniform", low: 0, high: 1 } }),
    /parameter "a": unknown type "uniform": known are/,
  );
  throws(
    () => parseSearchSpace({ a: { type: "float", low: 0, hgh: 1 } }),
    /parameter "a": unknown key\(s\) hgh/,
  );
  throws(
    () => parseSearchSpace({ a: { type: "float", low: 2, high: 1 } }),
    /parameter "a": float low=2 must be <= high=1/,
  );
  throws(
    () => parseSearchSpace({ a: { type: "int", low: 0, high: 9, step: 0.5 } }),
    /parameter "a": int step must be an integer/,
  );
  throws(
    () => parseSearchSpace({ a: { type: "categorical", choices: [] } }),
    /parameter "a": categorical choices must not be empty/,
  );
  throws(
    () => parseSearchSpace({ a: { type: "float", low: 0, high: 1, grid: [] } }),
    /parameter "a": grid must be a non-empty list/,
  );
  throws(() => parseSearchSpace([1, 2]), /search space must be a JSON object/);
});
