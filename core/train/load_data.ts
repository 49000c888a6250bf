/**
 * Loading a run's dataset through its plugin and checking what the plugin handed over (shapes,
 * label range, finite features, normalisation), so a broken plugin fails here naming itself
 * rather than as NaNs in the first step; and the run's validation split.
 *
 * @module
 */

import { intKey, numKey } from "./config.ts";
import type { Config, DatasetSplit, DatasetSplits, Registry } from "./registry.ts";
import { type Split, stratifiedSplit } from "./split.ts";

/** Loads and checks the dataset the config names; `fitted` is a resumed run's saved transform. */
export async function loadDataset(
  registry: Registry,
  config: Config,
  fitted?: unknown,
): Promise<DatasetSplits> {
  const name = String(config.dataset);
  const data = await registry.get("dataset", name).load(config, fitted);
  checkDataset(data, `dataset "${name}"`);
  return data;
}

function checkSplit(split: DatasetSplit, name: string, features: number, classes: number): void {
  if (!Number.isInteger(split.count) || split.count < 0) {
    throw new RangeError(`${name}: count must be an integer ≥ 0, got ${split.count}`);
  }
  if (split.samples.length < split.count * features) {
    throw new RangeError(
      `${name}: ${split.count} rows of ${features} features need ${
        split.count * features
      } values, got ${split.samples.length}`,
    );
  }
  if (split.labels.length < split.count) {
    throw new RangeError(
      `${name}: ${split.count} rows need as many labels, got ${split.labels.length}`,
    );
  }
  for (let i = 0; i < split.count; i++) {
    if (split.labels[i]! >= classes) {
      throw new RangeError(
        `${name}: row ${i} has label ${split.labels[i]}, beyond the ${classes} classes`,
      );
    }
  }
  if (split.samples instanceof Float32Array) {
    const n = split.count * features;
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(split.samples[i]!)) {
        throw new RangeError(
          `${name}: feature ${i % features} of row ${Math.floor(i / features)} is ${
            split.samples[i]
          }`,
        );
      }
    }
  }
}

/** Fails naming the dataset when its splits, shapes or statistics do not fit together. */
export function checkDataset(data: DatasetSplits, what: string): void {
  const { features, classes, image } = data.info;
  if (!Number.isInteger(features) || features < 1 || !Number.isInteger(classes) || classes < 1) {
    throw new RangeError(
      `${what}: features ${features} and classes ${classes} must be integers ≥ 1`,
    );
  }
  if (image && image.channels * image.height * image.width !== features) {
    throw new RangeError(
      `${what}: an image of ${image.channels}×${image.height}×${image.width} is not ${features} features`,
    );
  }
  checkSplit(data.train, `${what} train split`, features, classes);
  checkSplit(data.test, `${what} test split`, features, classes);
  if (data.train.count < 1) throw new RangeError(`${what}: the training split is empty`);
  const counts = [1, features, image?.channels ?? 1];
  for (const [key, values] of [["mean", data.mean], ["std", data.std]] as const) {
    if (!counts.includes(values.length) || !values.every(Number.isFinite)) {
      throw new RangeError(
        `${what}: ${key} needs 1, ${
          image ? `${image.channels} (channels) ` : ""
        }or ${features} finite values, got [${values.join(", ")}]`,
      );
    }
  }
  if (!data.std.every((s) => s > 0)) {
    throw new RangeError(`${what}: std must be > 0, got [${data.std.join(", ")}]`);
  }
}

/** Training rows a run uses: the first `train_samples` (0 = all) of `count`. */
export function availableRows(config: Config, count: number): number {
  const limit = intKey(config, "train_samples", 0);
  return limit > 0 ? Math.min(limit, count) : count;
}

/**
 * The run's validation split of its training rows: seeded by `seed`, stratified by label, the
 * `val_split` fraction held out. A pure function of the config and the labels, so a dataset
 * plugin can fit its transform on the rows the model will train on.
 */
export function validationSplit(config: Config, labels: ArrayLike<number>, count: number): Split {
  const available = availableRows(config, count);
  return stratifiedSplit(
    labels,
    available,
    numKey(config, "val_split", 0, 0.9),
    intKey(config, "seed", 0),
  );
}
