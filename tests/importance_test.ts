import assert from "node:assert";
import { join } from "node:path";
import {
  fitForest,
  importanceProblem,
  openJournalStorage,
  paramImportances,
  type RegressionTree,
} from "../core/search/mod.ts";
import { optunaTool, tempDir } from "./fixtures/search/helpers.ts";

interface OptunaImportances {
  importances: [string, number][];
  trees: {
    children_left: number[];
    children_right: number[];
    feature: number[];
    threshold: number[];
    value: number[];
  }[];
}

async function studyTrials(path: string, study: string) {
  const storage = await openJournalStorage(path);
  try {
    const s = (await storage.getAllStudies()).find((x) => x.name === study)!;
    return await storage.getAllTrials(s.studyId);
  } finally {
    await storage.close();
  }
}

Deno.test("importance: fANOVA equals Optuna 3.1's FanovaImportanceEvaluator, tree for tree", async () => {
  await using dir = await tempDir();
  const journal = join(dir.path, "importance.log");
  await optunaTool("importance-study", journal, "dominant", "40", "3");
  const trials = await studyTrials(journal, "dominant");
  const states = trials.map((t) => t.state);
  assert.ok(states.includes(2) && states.includes(3), "the study has pruned and failed trials");

  for (const seed of [0, 7]) {
    const theirs = (await optunaTool(
      "importances",
      journal,
      "dominant",
      String(seed),
    )) as unknown as OptunaImportances;
    // The forest first: the same bootstrap, feature order and splits give the same trees.
    const p = importanceProblem(trials);
    assert.deepStrictEqual(p.varying, ["c", "lr", "n", "x", "y"], "extra is conditional: left out");
    const ours: RegressionTree[] = fitForest(p.rows, p.targets, { seed });
    assert.strictEqual(ours.length, theirs.trees.length);
    ours.forEach((t, i) => {
      const o = theirs.trees[i]!;
      assert.deepStrictEqual(t.feature, o.feature, `tree ${i} features`);
      assert.deepStrictEqual(t.childrenLeft, o.children_left, `tree ${i} shape`);
      t.threshold.forEach((th, k) => {
        if (t.feature[k]! >= 0) assert.strictEqual(th, o.threshold[k], `tree ${i} node ${k}`);
      });
      t.value.forEach((v, k) => assert.ok(Math.abs(v - o.value[k]!) < 1e-12, `tree ${i} value`));
    });
    // Then the decomposition, and the order Optuna returns.
    const result = paramImportances(trials, { seed });
    assert.deepStrictEqual(
      result.importances.map((r) => r.name),
      theirs.importances.map(([n]) => n),
      `seed ${seed}: same order`,
    );
    result.importances.forEach((r, i) => {
      const [, v] = theirs.importances[i]!;
      assert.ok(
        Math.abs(r.importance - v) < 1e-9,
        `seed ${seed} ${r.name}: ${r.importance} vs ${v}`,
      );
    });
    assert.strictEqual(result.importances[0]!.name, "x");
    assert.ok(result.importances[0]!.importance > 0.8, "x dominates");
    assert.match(result.method, new RegExp(`fANOVA .*64 trees, depth 64, seed ${seed}`));
  }
  const one = trials.filter((t) => t.state === 1).slice(0, 1);
  assert.throws(() => paramImportances(one), /at least 2 complete trials, the study has 1/);
});
