/**
 * `deno task predict --run DIR --data FILE|DIR`: applies a run's model, with its saved input
 * transform, to new rows and writes a CSV of each row's predicted label and class probabilities.
 * Rows stream: they are read batch by batch, go through the GPU a batch at a time (the next batch
 * computing while the last one is written), and are written as they come, so neither the input
 * nor the output is ever whole in memory. With labels (a CSV's label column, an IDX label file,
 * CIFAR records) the accuracy is reported too. Everything — the run, its checkpoint, the model,
 * the input's header — is checked before the output is created; the output is written to a
 * temporary file and renamed when complete.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { Gpu } from "../gpu/device.ts";
import { KernelCache } from "../gpu/kernels.ts";
import { builtinRegistry } from "../../plugins/mod.ts";
import { resolveConfig } from "../train/config.ts";
import { closestNames, flagOf } from "../train/keys.ts";
import { Predictor } from "../train/predict.ts";
import { parseFlags, userPath } from "./args.ts";
import { openTrainingGpu } from "./open_gpu.ts";
import { loadPlugins, type PluginModule, resumePlugins } from "./plugins.ts";
import { defaultOutput, openRows, runInput, savedCsvTransform } from "./predict_inputs.ts";
import { readRunRecord } from "./run_folder.ts";

const BOOLEAN_FLAGS = new Set(["json", "help", "overwrite"]);
const VALUE_FLAGS = ["run", "data", "out", "labels", "checkpoint", "batch_size", "plugin"];

const HELP = `Usage: deno task predict --run DIR --data FILE|DIR [flags]

Applies the model of the run in DIR to new rows, with the run's input transform (a CSV's fitted
scaling and categories, an image set's normalisation), and writes a CSV: row, label (when the
input has labels), prediction, then p_<class> for every class. With labels it reports accuracy.

  --run DIR            the run folder (config.json and its checkpoint)
  --data FILE|DIR      a CSV file (csv runs); an IDX image file or a directory holding an IDX
                       test split (t10k-images-…, test-images-…); a CIFAR binary file or a
                       directory holding test_batch.bin / test.bin
  --labels FILE        an IDX label file for an IDX image file
  --out FILE           the CSV to write (default: beside the input, <name>.predictions.csv)
  --checkpoint NAME    model (default) or best: DIR/<NAME>.safetensors
  --batch-size N       rows per batch through the GPU (default the run's batch_size)
  --plugin PATH        the plugin modules the run was trained with, when they moved
  --overwrite          replace an existing --out file
  --json               print one JSON summary as the last line
  --help               this text`;

/** CSV quoting (RFC 4180) of one cell. */
function cell(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Probabilities of a row of predictions and the predicted class (ties: the lowest index). */
function probabilities(values: Float32Array, classes: number): { p: number[]; best: number } {
  if (values.length === 1 && classes === 2) {
    // One logit (bce): p(1) = σ(z), class 1 when z > 0, as the accuracy counts it.
    const z = values[0]!;
    const p1 = 1 / (1 + Math.exp(-z));
    return { p: [1 - p1, p1], best: z > 0 ? 1 : 0 };
  }
  let best = 0;
  for (let k = 1; k < values.length; k++) if (values[k]! > values[best]!) best = k;
  const max = values[best]!;
  let sum = 0;
  const p = Array.from(values, (z) => {
    const e = Math.exp(z - max);
    sum += e;
    return e;
  });
  return { p: p.map((e) => e / sum), best };
}

/** Runs the predict command; returns the exit code (130 after Ctrl-C). */
export async function predictCommand(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, BOOLEAN_FLAGS);
  if (parsed.booleans.has("help")) {
    console.log(HELP);
    return 0;
  }
  for (const key of parsed.values.keys()) {
    if (!VALUE_FLAGS.includes(key)) {
      const near = closestNames(key, [...VALUE_FLAGS, ...BOOLEAN_FLAGS]);
      throw new RangeError(
        `unknown flag ${flagOf(key)}${
          near.length ? `; did you mean ${near.map(flagOf).join(" or ")}?` : ""
        } (deno task predict --help)`,
      );
    }
  }
  if (parsed.positionals.length > 0) {
    throw new RangeError(`unexpected argument "${parsed.positionals[0]}"; flags start with --`);
  }
  const one = (key: string) => parsed.values.get(key)?.at(-1);
  const json = parsed.booleans.has("json");
  const log = (line: string) => (json ? console.error : console.log)(line);
  const runArg = one("run");
  const dataArg = one("data");
  if (!runArg) throw new RangeError("--run DIR is required: the run whose model predicts");
  if (!dataArg) throw new RangeError("--data FILE|DIR is required: the rows to predict");
  const dir = userPath(runArg);
  const data = userPath(dataArg);
  const record = await readRunRecord(dir, "--run");
  const which = one("checkpoint") ?? "model";
  if (which !== "model" && which !== "best") {
    throw new RangeError(`--checkpoint must be "model" or "best", got "${which}"`);
  }
  const checkpoint = join(dir, `${which}.safetensors`);
  const checkpointBytes = await Deno.readFile(checkpoint).catch((e) => {
    throw new Error(
      e instanceof Deno.errors.NotFound
        ? `--run ${dir}: no ${which}.safetensors (the run wrote no ${
          which === "best" ? "best checkpoint: train with --keep-best" : "checkpoint yet"
        })`
        : `--run ${dir}: cannot read ${checkpoint} (${(e as Error).message})`,
    );
  });
  const sha256 = createHash("sha256").update(checkpointBytes).digest("hex");
  const out = userPath(one("out") ?? defaultOutput(data));
  if (out === data) throw new RangeError(`--out ${out} is the input; choose another file`);
  const exists = await Deno.stat(out).then(() => true, () => false);
  if (exists && !parsed.booleans.has("overwrite")) {
    throw new Error(`--out ${out} exists: choose another file or add --overwrite to replace it`);
  }
  if (!(await Deno.stat(dirname(out)).then((s) => s.isDirectory, () => false))) {
    throw new Error(`--out ${out}: the folder ${dirname(out)} does not exist`);
  }

  const opened = await openTrainingGpu("prediction", log);
  if (!(opened instanceof Gpu)) return opened.exitCode;
  const gpu = opened;
  const kernels = new KernelCache(gpu);
  const registry = builtinRegistry();
  const modules = await resumePlugins(
    record.plugins as PluginModule[] | undefined,
    parsed.values.get("plugin") ?? [],
    dir,
    log,
    "--run",
  );
  await loadPlugins(modules, registry, kernels);
  const config = resolveConfig(registry, [
    { source: `--run ${dir}/config.json`, values: record.config },
  ]);
  const input = await runInput(registry, record, config, dir, log);
  const transform = await savedCsvTransform(dir, config);
  const batchArg = one("batch_size");
  const batch = batchArg === undefined ? Number(config.batch_size) : Number(batchArg);
  if (!Number.isInteger(batch) || batch < 1) {
    throw new RangeError(`--batch-size must be an integer ≥ 1, got "${batchArg}"`);
  }
  const rows = await openRows({ data, labels: one("labels"), config, input, transform });
  const classes = transform?.classes ??
    Array.from({ length: input.info.classes }, (_, i) => String(i));
  let predictor: Predictor | undefined;
  const tmp = `${out}.tmp-${Deno.pid}`;
  let file: Deno.FsFile | undefined;
  let interrupted = false;
  const onSignal = () => (interrupted = true);
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    predictor = await Predictor.create({
      gpu,
      kernels,
      registry,
      config,
      input,
      batch,
      float: transform !== undefined,
      checkpoint,
    });
    if (
      predictor.outputs !== classes.length && !(predictor.outputs === 1 && classes.length === 2)
    ) {
      throw new RangeError(
        `--run ${dir}: the model gives ${predictor.outputs} values per row for ${classes.length} classes; predict reads one score per class (or one logit for two classes)`,
      );
    }
    log(
      `predicting ${rows.path}${
        rows.count !== undefined ? ` (${rows.count} rows)` : ""
      } with ${checkpoint} (sha256 ${sha256.slice(0, 12)}…), ${batch} rows per batch${
        rows.labelled ? "; the input has labels" : ""
      }`,
    );
    file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    const encoder = new TextEncoder();
    const header = ["row", ...(rows.labelled ? ["label"] : []), "prediction"]
      .concat(classes.map((c) => `p_${c}`)).map(cell).join(",");
    await file.write(encoder.encode(header + "\n"));
    const started = performance.now();
    let done = 0;
    let correct = 0;
    const write = async (b: Awaited<ReturnType<typeof rows.next>>, values: Float32Array) => {
      const lines: string[] = [];
      const k = predictor!.outputs;
      for (let r = 0; r < b!.rows; r++) {
        const { p, best } = probabilities(values.subarray(r * k, (r + 1) * k), classes.length);
        const label = b!.labels?.[r];
        if (label !== undefined && label === best) correct++;
        lines.push(
          [
            String(done + r),
            ...(label !== undefined ? [cell(classes[label]!)] : []),
            cell(classes[best]!),
            ...p.map((v) => String(Number(v.toPrecision(6)))),
          ].join(","),
        );
      }
      done += b!.rows;
      await file!.write(encoder.encode(lines.join("\n") + "\n"));
    };
    // One batch on the GPU while the previous one is written and the next one read.
    let pending: {
      batch: NonNullable<Awaited<ReturnType<typeof rows.next>>>;
      result: Promise<Float32Array>;
    } | undefined;
    while (!interrupted) {
      const next = await rows.next(batch);
      const submitted = next && { batch: next, result: predictor.run(next) };
      if (pending) await write(pending.batch, await pending.result);
      pending = submitted;
      if (!next) break;
    }
    if (interrupted) {
      log(`interrupted (SIGINT) after ${done} rows; ${out} was not written`);
      return 130;
    }
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, out);
    const seconds = (performance.now() - started) / 1000;
    const accuracy = rows.labelled && done > 0 ? correct / done : null;
    log(
      `predicted ${done} rows in ${seconds.toFixed(1)} s (${(done / seconds).toFixed(0)} rows/s)${
        accuracy === null
          ? ""
          : `; accuracy ${(100 * accuracy).toFixed(2)}% (${correct} of ${done})`
      }; wrote ${out}`,
    );
    if (json) {
      console.log(JSON.stringify({
        rows: done,
        accuracy,
        correct: accuracy === null ? null : correct,
        seconds,
        rows_per_sec: done / seconds,
        out,
        run: dir,
        checkpoint,
        checkpoint_sha256: sha256,
        adapter: gpu.report.description,
      }));
    }
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    file?.close();
    await Deno.remove(tmp).catch(() => {});
    await rows.close();
    predictor?.dispose();
    gpu.destroy();
  }
}
