/**
 * A run's dataset as the commands load it: paths resolved against the user's directory, loaded
 * and checked before anything is written (a run whose data fail to load leaves no folder), and
 * the transform its plugin fitted (CSV scaling, a text vocabulary) saved as `dataset.json` beside
 * `config.json`, from where `--resume` hands it back to the plugin.
 *
 * @module
 */

import { join } from "@std/path";
import { augmentation } from "../train/augment.ts";
import { loadDataset } from "../train/load_data.ts";
import type { Config, DatasetSplits, Registry } from "../train/registry.ts";
import { userPath } from "./args.ts";

/** The file of a run directory that holds the dataset's fitted transform. */
export const DATASET_FILE = "dataset.json";

/** Resolves the dataset's path keys (`data`, `test_data`, …) against the user's directory. */
export function resolveDataPaths(registry: Registry, config: Config): void {
  const plugin = registry.get("dataset", String(config.dataset));
  for (const key of plugin.paths ?? ["data"]) {
    if (config[key]) config[key] = userPath(String(config[key]));
  }
}

/** Loads the run's dataset; a resumed run's saved transform is applied instead of refitting. */
export async function loadRunDataset(
  registry: Registry,
  config: Config,
  resumeDir?: string,
): Promise<DatasetSplits> {
  let fitted: unknown;
  if (resumeDir) {
    const path = join(resumeDir, DATASET_FILE);
    let text: string | undefined;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (text !== undefined) {
      let saved: { dataset?: unknown; fitted?: unknown };
      try {
        saved = JSON.parse(text);
      } catch (e) {
        throw new Error(`--resume ${path}: not JSON (${(e as Error).message})`);
      }
      if (saved.dataset !== config.dataset) {
        throw new RangeError(
          `--resume ${path}: fitted for dataset ${
            JSON.stringify(saved.dataset)
          }, the run's is "${config.dataset}"`,
        );
      }
      fitted = saved.fitted;
    }
  }
  const data = await loadDataset(registry, config, fitted);
  // The augmentation keys are checked against the data now too (a bad range, no image shape).
  augmentation(config, data.info, 0, 0);
  return data;
}

/**
 * What a run's model reads, for `config.json`: the features and classes, the image shape, and the
 * normalisation the gather applies (`mean`, `std`), so the model can be applied to new data
 * (`deno task predict`) exactly as it was evaluated.
 */
export function inputRecord(data: DatasetSplits): Record<string, unknown> {
  return {
    features: data.info.features,
    classes: data.info.classes,
    ...(data.info.image ? { image: data.info.image } : {}),
    mean: data.mean,
    std: data.std,
  };
}

/** Writes the dataset's fitted transform into the run directory (nothing when it fitted none). */
export async function saveRunDataset(
  dir: string,
  config: Config,
  data: DatasetSplits,
): Promise<void> {
  if (data.fitted === undefined) return;
  await Deno.writeTextFile(
    join(dir, DATASET_FILE),
    JSON.stringify({ dataset: config.dataset, fitted: data.fitted }, null, 2) + "\n",
  );
}
