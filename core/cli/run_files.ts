/**
 * The files of a run directory besides the checkpoint: `config.json` (the resolved config and
 * where it ran), `metrics.jsonl` (appended: one object per readback window and per epoch) and
 * `curves.svg` (redrawn each epoch, from the whole metrics file, so a resumed run's curves
 * include what came before). Used by train and by every search trial.
 *
 * @module
 */

import { join } from "@std/path";
import { type CurveSeries, curvesSvg } from "../io/curves.ts";
import type { Config } from "../train/registry.ts";
import type { EpochRecord, TrainEvents } from "../train/trainer.ts";

type Window = Parameters<NonNullable<TrainEvents["window"]>>[0];

/** Writes a run's config, metrics and curves. */
export class RunFiles {
  readonly dir: string;
  readonly #config: Config;
  readonly #metrics: Deno.FsFile;
  readonly #loss: [number, number][] = [];
  readonly #accuracy: [number, number][] = [];
  readonly #test: [number, number][] = [];
  readonly #val: [number, number][] = [];
  readonly #testLoss: [number, number][] = [];
  readonly #valLoss: [number, number][] = [];

  private constructor(dir: string, config: Config, metrics: Deno.FsFile) {
    this.dir = dir;
    this.#config = config;
    this.#metrics = metrics;
  }

  /**
   * Opens the files of `dir`. With `meta`, writes `config.json` (a new run); without, keeps it
   * (a resumed run) and reloads the metrics written so far.
   */
  static async open(
    dir: string,
    config: Config,
    meta?: Record<string, unknown>,
  ): Promise<RunFiles> {
    await Deno.mkdir(dir, { recursive: true });
    if (meta) {
      await Deno.writeTextFile(
        join(dir, "config.json"),
        JSON.stringify({ config, ...meta }, null, 2) + "\n",
      );
    }
    const path = join(dir, "metrics.jsonl");
    let earlier = "";
    try {
      earlier = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const files = new RunFiles(dir, config, await Deno.open(path, { append: true, create: true }));
    for (const line of earlier.split("\n")) {
      if (line.trim() === "") continue;
      try {
        files.#remember(JSON.parse(line));
      } catch {
        // A line torn by a crash is skipped; the next append starts on a fresh line.
      }
    }
    if (earlier !== "" && !earlier.endsWith("\n")) files.#append("");
    return files;
  }

  #remember(r: Record<string, string | number | null>): void {
    const n = (k: string) => (typeof r[k] === "number" ? r[k] as number : undefined);
    const step = n("step");
    if (step === undefined) return;
    if (r.type === "train" && n("loss") !== undefined && n("accuracy") !== undefined) {
      this.#loss.push([step, n("loss")!]);
      this.#accuracy.push([step, n("accuracy")!]);
    } else if (r.type === "epoch") {
      if (n("test_accuracy") !== undefined) this.#test.push([step, n("test_accuracy")!]);
      if (n("val_accuracy") !== undefined) this.#val.push([step, n("val_accuracy")!]);
      if (n("test_loss") !== undefined) this.#testLoss.push([step, n("test_loss")!]);
      if (n("val_loss") !== undefined) this.#valLoss.push([step, n("val_loss")!]);
    }
  }

  #append(text: string): void {
    try {
      this.#metrics.writeSync(new TextEncoder().encode(text));
    } catch (e) {
      throw new Error(
        `cannot append to ${join(this.dir, "metrics.jsonl")} (${(e as Error).message})`,
        {
          cause: e,
        },
      );
    }
  }

  #record(r: Record<string, unknown>): void {
    this.#append(JSON.stringify(r) + "\n");
    this.#remember(r as Record<string, string | number | null>);
  }

  /** Records a readback window. */
  window(w: Window): void {
    this.#record({
      type: "train",
      step: w.step,
      epoch: w.epoch + 1,
      loss: w.loss,
      accuracy: w.accuracy,
      lr: w.lr,
      samples_per_sec: w.samplesPerSec,
      // Each term of a loss with several (a model's auxiliary losses), by name.
      ...(w.terms ? { loss_terms: w.terms } : {}),
    });
  }

  /** Records an epoch and redraws the curves. */
  async epoch(e: EpochRecord): Promise<void> {
    this.#record({ type: "epoch", ...e });
    await this.curves();
  }

  /** Redraws `curves.svg`. */
  async curves(): Promise<void> {
    const path = join(this.dir, "curves.svg");
    try {
      await this.#writeCurves();
    } catch (e) {
      throw new Error(`cannot write ${path} (${(e as Error).message})`, { cause: e });
    }
  }

  #writeCurves(): Promise<void> {
    const title = `${this.#config.model} on ${this.#config.dataset}`;
    return Deno.writeTextFile(
      join(this.dir, "curves.svg"),
      curvesSvg(this.#series(), { title, xLabel: "optimizer step" }),
    );
  }

  /** One colour per split (train, validation, test); loss and accuracy in their own panels. */
  #series(): CurveSeries[] {
    // A run without a validation split gets no validation curves rather than empty ones.
    const val = this.#val.length + this.#valLoss.length > 0;
    const perEpoch = (name: string, points: [number, number][], panel: "loss" | "accuracy") => ({
      name,
      points,
      panel,
      color: name.startsWith("validation") ? 1 : 2,
      markers: true,
    });
    return [
      { name: "train loss", points: this.#loss, panel: "loss", color: 0 },
      ...(val ? [perEpoch("validation loss", this.#valLoss, "loss")] : []),
      perEpoch("test loss", this.#testLoss, "loss"),
      { name: "train accuracy", points: this.#accuracy, panel: "accuracy", color: 0 },
      ...(val ? [perEpoch("validation accuracy", this.#val, "accuracy")] : []),
      perEpoch("test accuracy", this.#test, "accuracy"),
    ];
  }

  /**
   * The events of a run that records into these files — every window and epoch into
   * `metrics.jsonl` and the curves — then passes each event on to `more` (a progress bar, a log
   * line, a pruner). The one way train and search wire a run's events.
   */
  events(more: TrainEvents = {}): TrainEvents {
    return {
      start: (info) => more.start?.(info),
      window: (w) => {
        this.window(w);
        more.window?.(w);
      },
      epoch: async (e) => {
        await this.epoch(e);
        await more.epoch?.(e);
      },
      checkpoint: (path, at) => more.checkpoint?.(path, at),
    };
  }

  /** Redraws the curves and closes the metrics file. */
  async close(): Promise<void> {
    await this.curves();
    this.#metrics.close();
  }
}
