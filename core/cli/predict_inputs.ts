/**
 * What `deno task predict` reads besides the model: the run's input transform — the
 * normalisation and shapes recorded in its `config.json` (`input`), and a CSV run's fitted
 * transform from `dataset.json` — and the rows of `--data`, chosen by the run's dataset: a CSV
 * file, IDX images (a file, or a directory's test split), or CIFAR binary records (a file, or a
 * directory's test batch).
 *
 * @module
 */

import { basename, dirname, extname, join } from "node:path";
import { cifarRows, csvRows, idxRows, type RowSource } from "../../datasets/row_streams.ts";
import { CSV_TRANSFORM_FORMAT, type CsvTransform } from "../../datasets/csv_transform.ts";
import { findIdxSplit } from "../../datasets/idx.ts";
import { existing } from "../io/data_files.ts";
import type { ModelInput } from "../train/predict.ts";
import type { Config, Registry } from "../train/registry.ts";
import { DATASET_FILE, inputRecord, loadRunDataset } from "./run_dataset.ts";
import type { RunRecord } from "./run_folder.ts";

/** A CSV run's fitted transform, from its `dataset.json`; undefined for other runs. */
export async function savedCsvTransform(
  dir: string,
  config: Config,
): Promise<CsvTransform | undefined> {
  const path = join(dir, DATASET_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    if (config.dataset === "csv") {
      throw new Error(
        `--run ${dir}: ${path} is missing: a CSV run's fitted scaling and categories are needed to read new rows as it read its own`,
      );
    }
    return undefined;
  }
  let saved: { dataset?: unknown; fitted?: CsvTransform };
  try {
    saved = JSON.parse(text);
  } catch (e) {
    throw new Error(`--run ${path}: not JSON (${(e as Error).message})`);
  }
  if (saved.fitted?.format !== CSV_TRANSFORM_FORMAT) return undefined;
  return saved.fitted;
}

/**
 * The run's input transform: its config.json's `input` record, or — a run written before it was
 * recorded — the run's own dataset loaded again (saying so through `log`).
 */
export async function runInput(
  registry: Registry,
  record: RunRecord,
  config: Config,
  dir: string,
  log: (line: string) => void,
): Promise<ModelInput> {
  let input = record.input as Record<string, unknown> | undefined;
  if (!input) {
    log(
      `${dir}/config.json has no "input" record (a run from before deno task predict): loading the run's own dataset for its normalisation`,
    );
    input = inputRecord(await loadRunDataset(registry, config, dir));
  }
  const numbers = (v: unknown) => Array.isArray(v) && v.length > 0 && v.every(Number.isFinite);
  const image = input.image as ModelInput["info"]["image"];
  if (
    !Number.isInteger(input.features) || !Number.isInteger(input.classes) ||
    !numbers(input.mean) || !numbers(input.std)
  ) {
    throw new Error(
      `--run ${dir}/config.json: its "input" record is not {features, classes, mean, std}: ${
        JSON.stringify(input)
      }`,
    );
  }
  return {
    info: {
      features: input.features as number,
      classes: input.classes as number,
      ...(image ? { image } : {}),
    },
    mean: input.mean as number[],
    std: input.std as number[],
  };
}

/** The test file of a CIFAR directory (or of the tarball's folder inside it). */
function cifarTestFile(dir: string, variant: "cifar10" | "cifar100"): string {
  const name = variant === "cifar10" ? "test_batch.bin" : "test.bin";
  const inner = join(dir, variant === "cifar10" ? "cifar-10-batches-bin" : "cifar-100-binary");
  const path = existing(dir, name) ?? existing(inner, name);
  if (!path) throw new Error(`--data ${dir}: no ${name} (nor ${name}.gz) in it`);
  return path;
}

/** Opens the rows of `--data` as the run's dataset reads them. */
export async function openRows(args: {
  data: string;
  labels?: string;
  config: Config;
  input: ModelInput;
  transform?: CsvTransform;
}): Promise<RowSource> {
  const { data, config, input, transform } = args;
  const stat = await Deno.stat(data).catch(() => undefined);
  if (!stat) throw new Error(`--data ${data}: no such file or directory`);
  const dataset = String(config.dataset);
  if (args.labels && (transform || dataset.startsWith("cifar"))) {
    throw new Error(
      `--labels reads an IDX label file; ${
        transform
          ? "a CSV brings its labels in its label column"
          : "CIFAR records hold their labels"
      }`,
    );
  }
  if (transform) {
    if (!stat.isFile) throw new Error(`--data ${data}: a CSV run predicts the rows of a CSV file`);
    return await csvRows(data, transform, {
      missing: config.missing === "impute" ? "impute" : "error",
      delimiter: String(config.csv_delimiter || ","),
    });
  }
  const image = input.info.image;
  if (!image) {
    throw new Error(
      `--data ${data}: the run's dataset "${dataset}" has no reader for new rows; predict reads CSV files (csv runs), IDX images and CIFAR binary records (image runs)`,
    );
  }
  if (dataset === "cifar10" || dataset === "cifar100") {
    const file = stat.isFile ? data : cifarTestFile(data, dataset);
    return await cifarRows(file, dataset, String(config.cifar_labels ?? "fine") !== "coarse");
  }
  const files = stat.isFile ? { images: data, labels: args.labels } : findIdxSplit(data, "test");
  return await idxRows(files.images, args.labels ?? files.labels, image, input.info.classes);
}

/** The default output: `<input without extensions>.predictions.csv`, beside the input. */
export function defaultOutput(data: string): string {
  const name = basename(data.replace(/\/+$/, "")).replace(/\.gz$/, "");
  const stem = extname(name) ? name.slice(0, -extname(name).length) : name;
  return join(dirname(data.replace(/\/+$/, "")), `${stem}.predictions.csv`);
}
