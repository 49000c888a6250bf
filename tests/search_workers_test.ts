/**
 * Many workers on one journal file: several of our processes and one of Optuna's run trials at
 * once and none is lost or duplicated; a killed worker's RUNNING trial is failed on resume;
 * heartbeats keep long trials alive.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { fileURLToPath } from "node:url";
import {
  HEARTBEAT_ATTR,
  JournalMemoryBackend,
  JournalStorage,
  openJournalStorage,
  RandomSampler,
  Study,
  TrialState,
} from "../core/search/mod.ts";
import { OPTUNA_TOOL, optunaTool, tempDir } from "./fixtures/search/helpers.ts";

const WORKER = fileURLToPath(new URL("./fixtures/search/worker.ts", import.meta.url));

function denoWorker(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WORKER, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { XDG_RUNTIME_DIR: "/tmp/xdg" },
  }).spawn();
}

async function finish(child: Deno.ChildProcess, what: string): Promise<string> {
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`${what} failed: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

Deno.test("workers: 3 Deno processes and 1 Optuna process share a journal without losing or duplicating a trial", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/shared.log`;
  const n = 10;
  const children = ["w0", "w1", "w2"].map((tag) => ({
    tag,
    child: denoWorker([path, "many", String(n), tag, "run"]),
  }));
  const optuna = new Deno.Command("/usr/bin/python3", {
    args: [OPTUNA_TOOL, "worker", path, "many", String(n), "optuna"],
    stdout: "piped",
    stderr: "piped",
  });
  // Optuna's worker loads an existing study: wait until one of ours has created it.
  while (!(await Deno.readTextFile(path).catch(() => "")).includes('"op_code":0')) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const py = finish(optuna.spawn(), "optuna worker");
  const ran = new Map<string, number[]>();
  for (const { tag, child } of children) {
    ran.set(tag, JSON.parse(await finish(child, `worker ${tag}`)));
  }
  await py;
  const storage = await openJournalStorage(path);
  const trials = storage.replay.studyTrialList(storage.replay.studyByName("many")!.studyId);
  strictEqual(trials.length, 4 * n, "every ask created exactly one trial");
  deepStrictEqual(
    trials.map((t) => t.number),
    Array.from({ length: 4 * n }, (_, i) => i),
    "numbers 0..39, no gaps",
  );
  strictEqual(new Set(trials.map((t) => t.trialId)).size, 4 * n, "trial ids unique");
  for (const t of trials) {
    strictEqual(t.state, TrialState.COMPLETE, `trial ${t.number} finished`);
    strictEqual(
      t.values![0],
      t.number + 0.5,
      `trial ${t.number} got the value of the worker that owned it`,
    );
  }
  for (const [tag, numbers] of ran) {
    deepStrictEqual(
      trials.filter((t) => t.userAttrs.tag === tag).map((t) => t.number),
      numbers,
      `worker ${tag} ran exactly the trials it reported`,
    );
  }
  strictEqual(trials.filter((t) => t.userAttrs.tag === "optuna").length, n);
  await storage.close();
  const [dump] = (await optunaTool("dump-all", path)) as { trials: unknown[] }[][];
  strictEqual(dump![0]!.trials.length, 4 * n, "Optuna reads the shared journal");
  await Deno.lstat(`${path}.lock`).then(() => ok(false, "lock left behind"), () => {});
});

Deno.test("workers: a killed worker's RUNNING trial is failed on resume; live and foreign trials are kept", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/resume.log`;
  const child = denoWorker([path, "resume", "1", "doomed", "hang"]);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("worker exited before starting its trial");
    line += value;
  }
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel().catch(() => {});
  await child.stderr.cancel();

  const storage = await openJournalStorage(path, { fsync: false });
  const study = await Study.open(storage, {
    name: "resume",
    direction: "minimize",
    sampler: new RandomSampler(1),
    pruner: null,
  });
  const live = await study.ask({ x: { type: "float", low: 0, high: 1 } }); // ours, in this live process
  const remote = await storage.createTrial(study.studyId); // a worker on another host, silent for an hour
  await storage.setTrialSystemAttr(remote, HEARTBEAT_ATTR, {
    host: "elsewhere",
    pid: 1,
    pid_start: 1,
    time: Date.now() - 3_600_000,
  });
  const foreign = await storage.createTrial(study.studyId); // an Optuna worker: no heartbeat attr
  const numberOf = (id: number) => storage.replay.trials[id]!.number;

  const failed = await study.failStaleTrials({ staleAfterMs: 600_000 });
  deepStrictEqual(
    failed,
    [0, numberOf(remote)],
    "the killed worker's trial and the silent remote one",
  );
  const state = (n: number) => storage.replay.studyTrialList(study.studyId)[n]!.state;
  strictEqual(state(0), TrialState.FAIL);
  strictEqual(state(live.number), TrialState.RUNNING, "a live local worker's trial stays");
  strictEqual(
    state(numberOf(foreign)),
    TrialState.RUNNING,
    "trials without our heartbeat stay by default",
  );
  deepStrictEqual(await study.failStaleTrials({ foreignStaleAfterMs: 0, now: Date.now() + 1000 }), [
    numberOf(foreign),
  ]);
  // The search resumes: finished trials stay, new ones get new numbers.
  await study.tell(live, { state: "complete", value: 0.25 });
  const next = await study.ask({ x: { type: "float", low: 0, high: 1 } });
  strictEqual(next.number, 4);
  await storage.close();
});

Deno.test("workers: a background heartbeat refreshes a long trial and stops when it is told", async () => {
  const storage = new JournalStorage(new JournalMemoryBackend());
  const study = await Study.open(storage, {
    name: "beat",
    direction: "minimize",
    sampler: new RandomSampler(2),
    pruner: null,
  });
  const trial = await study.ask({ x: { type: "float", low: 0, high: 1 } });
  const beat = () => (trial.frozen.systemAttrs[HEARTBEAT_ATTR] as { time: number }).time;
  const first = beat();
  trial.startHeartbeat(5);
  while (beat() === first) {
    await new Promise((r) => setTimeout(r, 5));
    await storage.sync();
  }
  await study.tell(trial, { state: "complete", value: 1 });
  const records = storage.replay.recordsApplied;
  await new Promise((r) => setTimeout(r, 30));
  await storage.sync();
  strictEqual(storage.replay.recordsApplied, records, "no heartbeat after tell");
  ok(beat() > first);
});
