/**
 * The checkpoint policy of a run: where its checkpoint lives, how a run starts (fresh weights
 * from the seed, or a checkpoint's weights, optimizer state, EMAs and counters), and writing the
 * run's state as it stands — at epoch ends, every `checkpoint_every` steps and on interruption —
 * but only state that is finite: weights, optimizer state or EMAs with a NaN or ∞ are never
 * written, so the last good checkpoint survives a divergence. With `keep_best`, the checkpoint of
 * the best validation metric is kept beside the last one.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { COUNTER_COUNT } from "../gpu/counters.ts";
import { loadCheckpoint, type RunPosition, saveCheckpoint } from "../io/checkpoint.ts";
import { TEMP_SUFFIX } from "../io/safetensors.ts";
import { seededRandom } from "../util/random.ts";
import type { BuiltRun } from "./build.ts";

/** Raised when the loss or the weights turn NaN or infinite; the last good checkpoint is kept. */
export class DivergenceError extends Error {
  /** Always `"DivergenceError"`. */
  override name = "DivergenceError";
}

/** The index of the first non-finite value, or -1. */
function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return i;
  return -1;
}

/** Writes and restores a run's checkpoint. */
export class Checkpointer {
  readonly run: BuiltRun;
  /** `model.safetensors` in the run directory. */
  readonly path: string;
  /** `best.safetensors`: the checkpoint of the best validation metric (with `keep_best`). */
  readonly bestPath: string;
  readonly #every: number;
  readonly #onWrite?: (path: string, position: RunPosition) => void;

  constructor(run: BuiltRun, outDir: string, onWrite?: (path: string, at: RunPosition) => void) {
    this.run = run;
    this.path = join(outDir, "model.safetensors");
    this.bestPath = join(outDir, "best.safetensors");
    this.#every = run.settings.checkpointEvery;
    this.#onWrite = onWrite;
  }

  /** Puts the starting state on the GPU: a checkpoint's, or fresh weights; returns the position. */
  async start(resumeFrom?: string): Promise<RunPosition> {
    const { gpu, plan, optimizer, counters, settings } = this.run;
    if (!resumeFrom) {
      gpu.write(plan.params, plan.layout.initialValues(seededRandom(settings.seed)));
      return { epoch: 0, stepInEpoch: 0, step: 0, counters: Array(COUNTER_COUNT).fill(0) };
    }
    const { ema } = this.run;
    const ck = await loadCheckpoint(resumeFrom, plan.layout, optimizer.slots, ema?.names);
    gpu.write(plan.params, ck.params);
    ck.state.forEach((s, i) => gpu.write(optimizer.state[i]!, s));
    ck.ema?.values.forEach((v, i) => gpu.write(ema!.buffers[i]!, v.subarray(0, ema!.n)));
    gpu.write(counters, Uint32Array.from(ck.counters));
    return { epoch: ck.epoch, stepInEpoch: ck.stepInEpoch, step: ck.step, counters: ck.counters };
  }

  /** Whether a mid-epoch checkpoint is due after `step` (`checkpoint_every`). */
  dueAfter(step: number): boolean {
    return this.#every > 0 && step % this.#every === 0;
  }

  /** Steps until the next mid-epoch checkpoint from `step` (Infinity when off). */
  stepsUntilDue(step: number): number {
    return this.#every > 0 ? this.#every - (step % this.#every) : Infinity;
  }

  /**
   * Reads the weights, optimizer state and counters back and writes them atomically (to `path`,
   * or `best.safetensors` with `best`). Non-finite weights or state are a {@link DivergenceError}
   * and write nothing.
   */
  async write(position: Omit<RunPosition, "counters">, best = false): Promise<void> {
    const { gpu, plan, optimizer, counters, config, ema } = this.run;
    const params = await gpu.readF32(plan.params);
    const state = await Promise.all(optimizer.state.map((b) => gpu.readF32(b)));
    const averages = ema ? await Promise.all(ema.buffers.map((b) => gpu.readF32(b, ema.n))) : [];
    for (
      const [what, values] of [
        ["weights", params],
        ...state.map((s, i) => [
          `optimizer state "${optimizer.slots[i]}"`,
          s,
        ]),
        ...averages.map((a, i) => [`${ema!.names[i]} weights`, a]),
      ] as [string, Float32Array][]
    ) {
      const bad = firstNonFinite(values);
      if (bad >= 0) {
        const seg = plan.layout.segments.find((s) => bad >= s.offset && bad < s.offset + s.size);
        throw new DivergenceError(
          `the ${what} became ${values[bad]} by optimizer step ${position.step}${
            seg ? ` (in ${seg.param.name})` : ""
          }; stopped there. The last good checkpoint (if any) is kept at ${this.path}`,
        );
      }
    }
    const at = { ...position, counters: Array.from(await gpu.readU32(counters, COUNTER_COUNT)) };
    const path = best ? this.bestPath : this.path;
    await saveCheckpoint(path, plan.layout, {
      ...at,
      params,
      state,
      slots: optimizer.slots,
      config,
      ...(ema ? { ema: { names: ema.names, values: averages } } : {}),
    });
    this.#onWrite?.(path, at);
  }

  /**
   * Removes temporary checkpoint files a killed run left in the folder (the folder is locked by
   * this run, so no other writer owns them).
   */
  async removeStaleTemporaries(): Promise<string[]> {
    const removed: string[] = [];
    const dir = dirname(this.path);
    const prefixes = [basename(this.path), basename(this.bestPath)].map((b) => b + TEMP_SUFFIX);
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.isFile && prefixes.some((p) => e.name.startsWith(p))) {
          await Deno.remove(join(dir, e.name));
          removed.push(e.name);
        }
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return removed;
  }
}
