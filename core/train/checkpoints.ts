/**
 * The checkpoint policy of a run: where its checkpoint lives, how a run starts (fresh weights
 * from the seed, or a checkpoint's weights, optimizer state and counters), and writing the run's
 * state as it stands — at epoch ends, every `checkpoint_every` steps and on interruption.
 *
 * @module
 */

import { join } from "node:path";
import { COUNTER_COUNT } from "../gpu/counters.ts";
import { loadCheckpoint, type RunPosition, saveCheckpoint } from "../io/checkpoint.ts";
import { seededRandom } from "../util/random.ts";
import type { BuiltRun } from "./build.ts";

/** Writes and restores a run's checkpoint. */
export class Checkpointer {
  readonly run: BuiltRun;
  /** `model.safetensors` in the run directory. */
  readonly path: string;
  readonly #every: number;
  readonly #onWrite?: (path: string, position: RunPosition) => void;

  constructor(run: BuiltRun, outDir: string, onWrite?: (path: string, at: RunPosition) => void) {
    this.run = run;
    this.path = join(outDir, "model.safetensors");
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
    const ck = await loadCheckpoint(resumeFrom, plan.layout, optimizer.plugin.slots);
    gpu.write(plan.params, ck.params);
    ck.state.forEach((s, i) => gpu.write(optimizer.state[i]!, s));
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

  /** Reads the weights, optimizer state and counters back and writes them atomically. */
  async write(position: Omit<RunPosition, "counters">): Promise<void> {
    const { gpu, plan, optimizer, counters, config } = this.run;
    const params = await gpu.readF32(plan.params);
    const state = await Promise.all(optimizer.state.map((b) => gpu.readF32(b)));
    const at = { ...position, counters: Array.from(await gpu.readU32(counters, COUNTER_COUNT)) };
    await saveCheckpoint(this.path, plan.layout, {
      ...at,
      params,
      state,
      slots: optimizer.plugin.slots,
      config,
    });
    this.#onWrite?.(this.path, at);
  }
}
