/**
 * The Redis journal against a real redis-server (started on a free loopback port, always
 * stopped) and Optuna 3.1's JournalRedisStorage: key layout, our trials read by Optuna, Optuna's
 * continuation read by us, concurrent writers, prefixes and databases kept apart.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert";
import {
  type JournalRedisBackend,
  MedianPruner,
  openJournalStorage,
  parseRedisUrl,
  Study,
  TpeSampler,
  TrialState,
} from "../core/search/mod.ts";
import {
  assertSameDump,
  dumpReplay,
  optunaTool,
  startRedis,
  tempDir,
} from "./fixtures/search/helpers.ts";

const SPACE = {
  x: { type: "float", low: -5, high: 5 },
  lr: { type: "float", low: 1e-4, high: 1e-1, log: true },
  width: { type: "int", low: 64, high: 512, step: 64 },
  opt: { type: "categorical", choices: ["adam", "sgd", "lamb"] },
};

Deno.test("redis: parses redis:// URLs", () => {
  deepStrictEqual(parseRedisUrl("redis://h:6380/2"), {
    host: "h",
    port: 6380,
    db: 2,
    password: null,
  });
  deepStrictEqual(parseRedisUrl("redis://:s%40cret@localhost"), {
    host: "localhost",
    port: 6379,
    db: 0,
    password: "s@cret",
  });
});

Deno.test("redis: our journal and Optuna's JournalRedisStorage share one server", async () => {
  await using dir = await tempDir();
  await using redis = await startRedis(dir.path);
  const storage = await openJournalStorage(redis.url, { prefix: "pfx" });
  const study = await Study.open(storage, {
    name: "redis-study",
    direction: "minimize",
    sampler: new TpeSampler({ seed: 4 }),
    pruner: new MedianPruner({ nStartupTrials: 2 }),
  });
  for (let k = 0; k < 6; k++) {
    const t = await study.ask(SPACE);
    const v = (t.params.x as number) ** 2;
    await t.report(k === 3 ? NaN : v + 1, 0);
    await t.report(v + 0.5, 1);
    await study.tell(t, k === 4 ? { state: "pruned" } : { state: "complete", value: v });
  }
  // Optuna's key layout: PREFIX:log_number is the last index, PREFIX:log:<i> the records.
  const client = (storage.backend as JournalRedisBackend).client;
  strictEqual(
    Number(await client.command("GET", "pfx:log_number")),
    storage.replay.recordsApplied - 1,
  );
  ok(String(await client.command("GET", "pfx:log:0")).includes('"study_name":"redis-study"'));
  // Optuna loads our trials and continues the study; we read its trials back.
  const theirs =
    (await optunaTool("optimize-redis", redis.url, "pfx", "redis-study", "4", "5")) as unknown[];
  await storage.sync();
  strictEqual(storage.replay.studyTrialList(study.studyId).length, 10);
  assertSameDump(
    dumpReplay(storage.replay),
    theirs as never,
    "Optuna's and our replay of the redis journal",
  );
  strictEqual(storage.replay.trials[4]!.state, TrialState.PRUNED);
  await storage.close();
});

Deno.test("redis: concurrent writers lose no trial; prefixes and databases stay apart", async () => {
  await using dir = await tempDir();
  await using redis = await startRedis(dir.path);
  const workers = await Promise.all(
    [0, 1, 2].map((i) => openJournalStorage(redis.url, { prefix: "many", workerId: `w${i}` })),
  );
  const studies = await Promise.all(
    workers.map((s) => Study.open(s, { name: "s", direction: "maximize", pruner: null })),
  );
  const numbers = await Promise.all(studies.map(async (study) => {
    const mine: number[] = [];
    for (let k = 0; k < 5; k++) {
      const t = await study.ask({ a: { type: "int", low: 0, high: 9 } });
      mine.push(t.number);
      await study.tell(t, { state: "complete", value: t.number });
    }
    return mine;
  }));
  deepStrictEqual(numbers.flat().sort((a, b) => a - b), Array.from({ length: 15 }, (_, i) => i));
  const other = await openJournalStorage(redis.url, { prefix: "other" });
  strictEqual(other.replay.studies.size, 0, "another prefix is another journal");
  const otherDb = await openJournalStorage(redis.url.replace(/\/3$/, "/4"), { prefix: "many" });
  strictEqual(otherDb.replay.studies.size, 0, "another database is another journal");
  for (const s of [...workers, other, otherDb]) await s.close();
});
