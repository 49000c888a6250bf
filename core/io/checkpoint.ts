/**
 * Checkpoints as standard safetensors: weights named and shaped like the PyTorch module's
 * `state_dict` (Linear weights `[out, in]`), optimizer state as `optim.<param>.<slot>`, each EMA of
 * the weights as `<ema>.<param>` (e.g. `ema0.05.linear_in.weight`), and in the
 * metadata (all strings) the config as JSON, the epoch, the step and the GPU step counters, so a
 * resumed run continues exactly. Written to a temporary file and renamed.
 *
 * @module
 */

import type { ParamLayout } from "../graph/params.ts";
import { readSafetensors, type Tensor, toFloat32, writeSafetensorsAtomic } from "./safetensors.ts";
/** A run's flat configuration, as stored in the metadata. */
type Config = Record<string, unknown>;

/** The format written into `__metadata__.format`. */
export const CHECKPOINT_FORMAT = "webgpu-trainer/1";

/** Where a run stands. */
export interface RunPosition {
  /** The epoch in progress (0-based) and the optimizer steps taken within it. */
  epoch: number;
  /** Optimizer steps taken within the epoch in progress. */
  stepInEpoch: number;
  /** Optimizer steps taken in all. */
  step: number;
  /** The GPU step counters. */
  counters: number[];
}

/** What a checkpoint holds. */
export interface CheckpointData extends RunPosition {
  params: Float32Array;
  /** One flat array per optimizer slot, in `slots` order. */
  state: Float32Array[];
  slots: string[];
  config: Config;
  /** EMAs of the trainable weights by name (`ema0.05`), each laid out like the trainable prefix. */
  ema?: { names: string[]; values: Float32Array[] };
}

/** Writes a checkpoint atomically. */
export async function saveCheckpoint(
  path: string,
  layout: ParamLayout,
  data: CheckpointData,
): Promise<void> {
  const tensors: Record<string, Tensor> = {};
  for (const { param, offset, size } of layout.segments) {
    tensors[param.name] = {
      dtype: "F32",
      shape: [...param.shape],
      data: data.params.slice(offset, offset + size),
    };
    // Optimizer state and EMAs exist for the trainable prefix only.
    if (offset >= layout.trainableTotal) continue;
    data.slots.forEach((slot, i) => {
      tensors[`optim.${param.name}.${slot}`] = {
        dtype: "F32",
        shape: [...param.shape],
        data: data.state[i]!.slice(offset, offset + size),
      };
    });
    data.ema?.names.forEach((name, i) => {
      tensors[`${name}.${param.name}`] = {
        dtype: "F32",
        shape: [...param.shape],
        data: data.ema!.values[i]!.slice(offset, offset + size),
      };
    });
  }
  await writeSafetensorsAtomic(path, tensors, {
    format: CHECKPOINT_FORMAT,
    config: JSON.stringify(data.config),
    epoch: String(data.epoch),
    step_in_epoch: String(data.stepInEpoch),
    step: String(data.step),
    counters: JSON.stringify(data.counters),
    optimizer_slots: JSON.stringify(data.slots),
    ...(data.ema ? { ema: JSON.stringify(data.ema.names) } : {}),
  });
}

/**
 * Reads a checkpoint into flat arrays laid out by `layout`; names and shapes must match, and it
 * must hold the optimizer `slots` and the EMAs `emaNames` the run has.
 */
export async function loadCheckpoint(
  path: string,
  layout: ParamLayout,
  slots: string[],
  emaNames: string[] = [],
): Promise<Omit<CheckpointData, "config"> & { config: Config }> {
  const { tensors, metadata } = await readSafetensors(path);
  const meta = metadata ?? {};
  if (meta.format !== CHECKPOINT_FORMAT) {
    throw new RangeError(
      meta.format === undefined
        ? `${path}: not a webgpu-trainer checkpoint (its __metadata__ has no "format"); this version reads "${CHECKPOINT_FORMAT}"`
        : `${path}: checkpoint format ${
          JSON.stringify(meta.format)
        }, but this version of webgpu-trainer reads "${CHECKPOINT_FORMAT}"; use the version that wrote it`,
    );
  }
  const params = new Float32Array(layout.total);
  const state = slots.map(() => new Float32Array(Math.max(layout.trainableTotal, 1)));
  const ema = emaNames.map(() => new Float32Array(Math.max(layout.trainableTotal, 1)));
  const take = (name: string, shape: readonly number[], into: Float32Array, offset: number) => {
    const t = tensors[name];
    if (!t) throw new RangeError(`${path}: tensor "${name}" is missing`);
    if (t.shape.join(",") !== shape.join(",")) {
      throw new RangeError(
        `${path}: tensor "${name}" has shape [${t.shape}], the model needs [${shape}]`,
      );
    }
    into.set(toFloat32(t), offset);
  };
  for (const { param, offset } of layout.segments) {
    take(param.name, param.shape, params, offset);
    if (offset >= layout.trainableTotal) continue;
    slots.forEach((slot, i) => take(`optim.${param.name}.${slot}`, param.shape, state[i]!, offset));
    emaNames.forEach((name, i) => take(`${name}.${param.name}`, param.shape, ema[i]!, offset));
  }
  const int = (key: string) => {
    const v = Number(meta[key]);
    if (!Number.isInteger(v) || v < 0) {
      throw new RangeError(`${path}: __metadata__.${key} is ${JSON.stringify(meta[key])}`);
    }
    return v;
  };
  const json = (key: string) => {
    try {
      return JSON.parse(meta[key] ?? "null");
    } catch {
      throw new RangeError(
        `${path}: __metadata__.${key} is not JSON: ${JSON.stringify(meta[key])}`,
      );
    }
  };
  const counters = json("counters");
  if (
    !Array.isArray(counters) ||
    !counters.every((c) => Number.isInteger(c) && c >= 0 && c <= 0xffffffff)
  ) {
    throw new RangeError(
      `${path}: __metadata__.counters must be a list of step counters (integers ≥ 0), got ${
        JSON.stringify(meta.counters)
      }`,
    );
  }
  const config = json("config");
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new RangeError(`${path}: __metadata__.config is not a config object`);
  }
  return {
    params,
    state,
    slots,
    config,
    ...(emaNames.length > 0 ? { ema: { names: emaNames, values: ema } } : {}),
    epoch: int("epoch"),
    stepInEpoch: int("step_in_epoch"),
    step: int("step"),
    counters,
  };
}
