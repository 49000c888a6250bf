/**
 * Journal format and replay: Optuna's sample files replay as Optuna 3.1 replays them, every op
 * type round-trips through our writer, our reader and Optuna's, replay's skip/refuse rules, torn
 * and malformed lines, and the file lock.
 */

import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert";
import {
  categoricalDistribution,
  DuplicatedStudyError,
  floatDistribution,
  intDistribution,
  JournalFileBackend,
  JournalFormatError,
  JournalMemoryBackend,
  JournalReplay,
  JournalStorage,
  openJournalStorage,
  OwnRecordError,
  StudyDirection,
  TrialState,
} from "../core/search/mod.ts";
import {
  assertSameDump,
  dumpReplay,
  FIXTURE_SAMPLES,
  OPTUNA_SAMPLES,
  optunaTool,
  sampleJournals,
  tempDir,
} from "./fixtures/search/helpers.ts";

const SAMPLES = [...OPTUNA_SAMPLES, ...FIXTURE_SAMPLES];

Deno.test("journal: Optuna's sample files replay exactly as Optuna 3.1 replays them", async () => {
  await using dir = await tempDir();
  const paths = SAMPLES.map((s) => `${dir.path}/${s}`);
  const samples = await sampleJournals();
  for (const [i, s] of SAMPLES.entries()) {
    await Deno.copyFile(`${samples}/${s}`, paths[i]!);
  }
  const theirs = (await optunaTool("dump-all", ...paths)) as unknown[];
  for (const [i, p] of paths.entries()) {
    const ours = await openJournalStorage(p);
    ok(ours.replay.trials.length > 0, `${SAMPLES[i]} has trials`);
    assertSameDump(dumpReplay(ours.replay), theirs[i] as never, `replay of ${SAMPLES[i]}`);
    await ours.close();
  }
});

Deno.test("journal: every op type round-trips through our writer, our reader and Optuna", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/ops.log`;
  const st = await openJournalStorage(path, { fsync: false });
  const gone = await st.createStudy("to-delete", [StudyDirection.MINIMIZE]); // op 0
  await st.deleteStudy(gone); // op 1
  const sid = await st.createStudy('\u00e9tude-\u7db2\u683c "q"\n', [StudyDirection.MAXIMIZE]);
  await st.setStudyUserAttr(sid, "nested", { a: [1, 2.5, null, true], s: "x" }); // op 2
  await st.setStudySystemAttr(sid, "sys", [1, 2, 3]); // op 3
  const x = floatDistribution(-10, 10);
  const lr = floatDistribution(1e-5, 0.1, { log: true });
  const q = floatDistribution(0, 1, { step: 0.3 });
  const n = intDistribution(1, 1000, { log: true });
  const w = intDistribution(64, 512, { step: 64 });
  const c = categoricalDistribution(["adam", "sgd", null, 3, 1.5, true]);
  const t0 = await st.createTrial(sid); // op 4, plain form
  await st.setTrialParam(t0, "x", -1.6595599059485195, x); // op 5
  await st.setTrialParam(t0, "lr", 0.007608481233714793, lr);
  await st.setTrialParam(t0, "q", 0.9, q);
  await st.setTrialParam(t0, "n", 7, n);
  await st.setTrialParam(t0, "w", 128, w);
  await st.setTrialParam(t0, "c", 5, c);
  await st.setTrialIntermediateValue(t0, 0, NaN); // op 7
  await st.setTrialIntermediateValue(t0, 1, Infinity);
  await st.setTrialIntermediateValue(t0, 2, 2.5);
  await st.setTrialUserAttr(t0, "note", "trial-0"); // op 8
  await st.setTrialSystemAttr(t0, "tsys", { k: "v" }); // op 9
  await st.setTrialStateValues(t0, TrialState.COMPLETE, [-Infinity]); // op 6
  const t1 = await st.createTrial(sid);
  await st.setTrialIntermediateValue(t1, 3, 0.25);
  await st.setTrialStateValues(t1, TrialState.PRUNED, [0.25]);
  const t2 = await st.createTrial(sid);
  await st.setTrialStateValues(t2, TrialState.FAIL, null);
  await st.createTrial(sid, { // op 4, template form (add_trial)
    state: TrialState.COMPLETE,
    values: [1.5],
    datetimeStart: "2026-11-23T08:26:48.878438",
    datetimeComplete: "2026-11-23T08:26:49.000001",
    params: { x: 2, c: "sgd" },
    distributions: { x, c },
    userAttrs: { src: "manual" },
    systemAttrs: { sk: 1 },
    intermediateValues: new Map([[0, 1], [5, 2]]),
  });
  const waiting = await st.createTrial(sid, {
    state: TrialState.WAITING,
    systemAttrs: { fixed_params: { x: 1.5 } },
  });
  strictEqual(
    await st.setTrialStateValues(waiting, TrialState.RUNNING),
    true,
    "claim of a WAITING trial",
  );
  const ops = new Set(
    (await Deno.readTextFile(path)).trim().split("\n").map((l) =>
      JSON.parse(l.replace(/NaN|-?Infinity/g, "0")).op_code
    ),
  );
  deepStrictEqual([...ops].sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "all ten op codes written");
  const again = await openJournalStorage(path);
  deepStrictEqual(
    dumpReplay(again.replay),
    dumpReplay(st.replay),
    "our reader rebuilds what our writer holds",
  );
  const [theirs] = (await optunaTool("dump-all", path)) as unknown[];
  assertSameDump(dumpReplay(st.replay), theirs as never, "Optuna's replay of our journal");
  strictEqual(again.replay.studyTrialList(sid)[0]!.params.c, true, "categorical index 5 is true");
  await st.close();
  await again.close();
});

Deno.test("journal: ids, numbers and skip rules follow Optuna's replay", async () => {
  const mem = new JournalMemoryBackend();
  const a = new JournalStorage(mem, { workerId: "A" });
  const b = new JournalStorage(mem.reader(), { workerId: "B" });
  const s0 = await a.createStudy("s0", [StudyDirection.MINIMIZE]);
  const s1 = await b.createStudy("s1", [StudyDirection.MINIMIZE]);
  await rejects(b.createStudy("s0", [StudyDirection.MINIMIZE]), DuplicatedStudyError);
  deepStrictEqual(
    [s0, s1],
    [0, 1],
    "study ids in creation order; the refused duplicate takes none",
  );
  const ta = await a.createTrial(s0);
  const tb = await b.createTrial(s1);
  const tc = await b.createTrial(s0);
  deepStrictEqual([ta, tb, tc], [0, 1, 2], "trial ids are global");
  await a.sync();
  deepStrictEqual(
    [a.replay.trials[tc]!.number, b.replay.trials[tb]!.number],
    [1, 0],
    "numbers per study",
  );
  await a.deleteStudy(s1);
  const s2 = await a.createStudy("s1", [StudyDirection.MAXIMIZE]);
  strictEqual(s2, 2, "a deleted study's id is never reused");
  strictEqual(await a.createTrial(s2), 3, "trial ids of deleted studies stay taken");
  // Own refusals throw; the other worker's replay skipped the same record identically.
  await a.setTrialParam(ta, "x", 0.5, floatDistribution(0, 1));
  await rejects(
    b.setTrialParam(tc, "x", 1, intDistribution(0, 1)),
    (e: unknown) => e instanceof OwnRecordError && e.reason === "incompatible",
  );
  await b.setTrialParam(tc, "x", 3, floatDistribution(0, 5)); // other bounds: a dynamic space, allowed
  await a.setTrialStateValues(ta, TrialState.COMPLETE, [1]);
  await rejects(
    b.setTrialIntermediateValue(ta, 0, 1),
    (e: unknown) => e instanceof OwnRecordError && e.reason === "finished-trial",
  );
  await rejects(
    b.setTrialUserAttr(99, "k", 1),
    (e: unknown) => e instanceof OwnRecordError && e.reason === "unknown-trial",
  );
  const wait = await a.createTrial(s0, { state: TrialState.WAITING });
  strictEqual(
    await b.setTrialStateValues(wait, TrialState.RUNNING),
    true,
    "first RUNNING record wins",
  );
  strictEqual(
    await a.setTrialStateValues(wait, TrialState.RUNNING),
    false,
    "second RUNNING record loses",
  );
  await a.sync();
  deepStrictEqual(
    dumpReplay(a.replay),
    dumpReplay(b.replay),
    "both workers replay to the same state",
  );
  strictEqual(a.replay.trials[tc]!.params.x, 3);
  // Optuna skips the same records: refused duplicates, incompatible params, late updates.
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/rules.log`, mem.lines.map((l) => l + "\n").join(""));
  const [theirs] = (await optunaTool("dump-all", `${dir.path}/rules.log`)) as unknown[];
  assertSameDump(dumpReplay(a.replay), theirs as never, "Optuna's replay of the same records");
});

Deno.test("journal: replay rejects what Optuna rejects", () => {
  const r = new JournalReplay("");
  throws(() => r.apply({ op_code: 10, worker_id: "w" }), JournalFormatError);
  throws(() => r.apply({ op_code: 0, worker_id: "w", study_name: "s" }), /lacks "directions"/);
  throws(
    () => r.apply({ op_code: 0, worker_id: "w", study_name: "s", directions: ["minimize"] }),
    JournalFormatError,
  );
  r.apply({ op_code: 0, worker_id: "w", study_name: "s", directions: [1] });
  throws(() => r.apply({ op_code: 4, worker_id: "w", study_id: 0 }), /datetime_start/);
  r.apply({ op_code: 4, worker_id: "w", study_id: 0, datetime_start: null });
  throws(
    () =>
      r.apply({
        op_code: 5,
        worker_id: "w",
        trial_id: 0,
        param_name: "x",
        param_value_internal: 1,
        distribution: { name: "FloatDistribution" },
      }),
    /JSON string/,
  );
  throws(
    () => r.apply({ op_code: 6, worker_id: "w", trial_id: 0, state: "COMPLETE", values: [1] }),
    /invalid trial state/,
  );
  throws(
    () => r.apply({ op_code: 6, worker_id: "w", trial_id: 0, state: 1, values: [1] }),
    /datetime_complete/,
  );
  throws(
    () => r.apply({ op_code: 8, worker_id: "w", trial_id: 0, user_attr: { a: 1, b: 2 } }),
    /one key/,
  );
  // Records about unknown studies or trials are skipped, not fatal.
  r.apply({ op_code: 2, worker_id: "w", study_id: 7, user_attr: { a: 1, b: 2 } });
  r.apply({ op_code: 9, worker_id: "w", trial_id: 7, system_attr: {} });
  strictEqual(r.trials.length, 1);
});

Deno.test("journal: a file journal in a folder that does not exist yet creates the folder", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/runs/nested/study.log`;
  const backend = await JournalFileBackend.open(path);
  strictEqual((await backend.readRecords()).length, 0);
  strictEqual((await Deno.stat(path)).isFile, true);
});

/** Replays a file with a fresh reader. */
async function replayFile(path: string): Promise<JournalReplay> {
  const r = new JournalReplay("");
  r.applyAll(await (await JournalFileBackend.open(path)).readRecords());
  return r;
}

Deno.test("journal: a journal cut mid-line still loads, and the next append repairs it", async () => {
  await using dir = await tempDir();
  const sample3 = `${await sampleJournals()}/sample3_tpe_median.log`;
  const full = await Deno.readFile(sample3);
  const lastStart = full.lastIndexOf(0x0a, full.length - 2) + 1;
  const complete = await replayFile(sample3);
  const cuts = [
    lastStart + 1,
    lastStart + 17,
    Math.floor((lastStart + full.length) / 2),
    full.length - 1,
  ];
  const paths: string[] = [];
  for (const cut of cuts) {
    const path = `${dir.path}/cut_${cut}.log`;
    await Deno.writeFile(path, full.subarray(0, cut));
    const r = await replayFile(path);
    strictEqual(
      r.recordsApplied,
      complete.recordsApplied - 1,
      `cut at byte ${cut}: all but the torn record`,
    );
    const st = await openJournalStorage(path, { fsync: false });
    await st.setStudyUserAttr(0, "resumed", cut);
    const text = await Deno.readTextFile(path);
    ok(
      text.endsWith("\n") && !text.slice(lastStart).includes("\n{") &&
        text.split("\n").length === complete.recordsApplied + 1,
      `cut ${cut}: torn tail dropped, new record on its own line`,
    );
    strictEqual((await replayFile(path)).studies.get(0)!.userAttrs.resumed, cut);
    paths.push(path);
    await st.close();
  }
  const theirs = (await optunaTool("dump-all", ...paths)) as Record<string, unknown>[][];
  for (const [i, d] of theirs.entries()) {
    strictEqual(
      (d[0]!.user_attrs as Record<string, number>).resumed,
      cuts[i],
      `Optuna loads repaired file ${i}`,
    );
  }
});

Deno.test("journal: a bad line followed by another is fatal; a bad last line is skipped", async () => {
  await using dir = await tempDir();
  const good = '{"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]}\n';
  const cases: [string, number | null][] = [
    [good + "{garbage\n", 1],
    [good + "\n", 1],
    [good + '{"op_code": 4, "worker_id": "w", "study_id": 0, "datetime_start": null}', 1],
    [good.replace("\n", "\r\n") + good.replace('"s"', '"t"'), 2],
    [good + "{garbage\n" + good, null],
    [good + "\n" + good, null],
  ];
  for (const [i, [text, expect]] of cases.entries()) {
    const path = `${dir.path}/bad_${i}.log`;
    await Deno.writeTextFile(path, text);
    if (expect === null) await rejects(replayFile(path), JournalFormatError, `case ${i} is fatal`);
    else strictEqual((await replayFile(path)).recordsApplied, expect, `case ${i}`);
  }
});

Deno.test("journal: appends wait for a lock held by another process (either lock kind)", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/locked.log`;
  for (const kind of ["symlink", "open"] as const) {
    const st = await openJournalStorage(path, { kind, fsync: false });
    // Another writer (Optuna's symlink lock) holds the lock.
    await Deno.symlink(path, path + ".lock");
    let done = false;
    const pending = st.createStudy(`study-${kind}`, [StudyDirection.MINIMIZE]).then(
      () => (done = true),
    );
    await new Promise((r) => setTimeout(r, 60));
    strictEqual(done, false, `${kind}: no append while the lock is held`);
    await Deno.remove(path + ".lock");
    await pending;
    strictEqual(done, true);
    await st.close();
  }
  // A lock left by a dead writer is broken after the grace period (Optuna >= 4.3).
  await Deno.writeTextFile(path + ".lock", "");
  const st = await openJournalStorage(path, { gracePeriodMs: 50, fsync: false });
  await st.createStudy("after-stale-lock", [StudyDirection.MINIMIZE]);
  strictEqual(st.replay.studies.size, 3);
  await rejects(Deno.lstat(path + ".lock"), Deno.errors.NotFound);
  await st.close();
});

Deno.test("journal: a writer waiting on a held lock says so, with how long it has waited and the lock's path", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/waited.log`;
  const told: [number, string][] = [];
  const st = await openJournalStorage(path, {
    fsync: false,
    waitReportMs: 40,
    onWait: (ms, lock) => told.push([ms, lock]),
  });
  await Deno.symlink(path, path + ".lock");
  const pending = st.createStudy("waited", [StudyDirection.MINIMIZE]);
  // Released once the writer has said it is waiting (twice), not after a guessed delay.
  while (told.length < 2) await new Promise((r) => setTimeout(r, 10));
  await Deno.remove(path + ".lock");
  await pending;
  strictEqual(told[0]![1], path + ".lock");
  ok(told[0]![0] >= 40 && told[1]![0] > told[0]![0], JSON.stringify(told));
  await st.close();
});
