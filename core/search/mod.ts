/**
 * Optuna-compatible hyper-parameter search: the JournalStorage format (file or Redis), replay,
 * random / TPE / grid samplers, the median pruner, and fANOVA parameter importances.
 *
 * ```ts
 * const storage = await openJournalStorage("runs/search.log"); // or "redis://host:6379/0"
 * const study = await Study.open(storage, { name: "mlp", direction: "minimize",
 *   sampler: new TpeSampler({ seed: 1 }), pruner: new MedianPruner() });
 * await study.failStaleTrials();
 * const trial = await study.ask(parseSearchSpace(spaceJson));
 * for (let epoch = 0; epoch < epochs; epoch++) {
 *   await trial.report(validationLoss, epoch);
 *   if (await trial.shouldPrune()) { await study.tell(trial, { state: "pruned" }); break; }
 * }
 * await study.tell(trial, { state: "complete", value: finalLoss });
 * ```
 * @module
 */

export * from "./distributions.ts";
export * from "./file_lock.ts";
export * from "./file_storage.ts";
export * from "./importance/fanova.ts";
export * from "./importance/forest.ts";
export * from "./importance/param_importances.ts";
export * from "./journal.ts";
export * from "./memory_storage.ts";
export * from "./mt19937.ts";
export * from "./npsort.ts";
export * from "./pruners/median.ts";
export * from "./pyjson.ts";
export * from "./redis_storage.ts";
export * from "./samplers/grid.ts";
export * from "./samplers/parzen.ts";
export * from "./samplers/random.ts";
export * from "./samplers/sampler.ts";
export * from "./samplers/tpe.ts";
export * from "./space.ts";
export * from "./storage.ts";
export * from "./study.ts";
export * from "./truncnorm.ts";
