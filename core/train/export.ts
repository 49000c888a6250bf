/**
 * The target weights of a run as their own tensors: for a model that generates its weights (a
 * hypernetwork's `generated` hook) the generator is built alone, planned like any graph and run
 * once on the GPU over the checkpoint's parameters, so the values are exactly those the trained
 * network used; for any other model they are its parameters as the checkpoint holds them (without
 * optimizer state or EMAs). Names and shapes are the target's `state_dict`.
 *
 * @module
 */

import { Graph } from "../graph/graph.ts";
import type { Gpu } from "../gpu/device.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import { submitDispatches } from "../gpu/kernels.ts";
import { createCounters } from "../gpu/counters.ts";
import { type Tensor as StoredTensor, toFloat32 } from "../io/safetensors.ts";
import { ModelPlan } from "./plan.ts";
import type { Config, DatasetInfo, Registry } from "./registry.ts";

/** One exported tensor. */
export interface ExportedTensor {
  shape: number[];
  data: Float32Array;
}

/** What {@link exportWeights} needs: the run's config and dataset info, and its checkpoint. */
export interface ExportOptions {
  gpu: Gpu;
  kernels: KernelCache;
  registry: Registry;
  config: Config;
  /** The dataset's info with `outputs` set as the trainer sets it. */
  info: DatasetInfo;
  /** The checkpoint's tensors by name. */
  checkpoint: Record<string, StoredTensor>;
  /** Names the checkpoint in errors. */
  source: string;
}

/** The run's target weights by `state_dict` name (see the module doc). */
export async function exportWeights(
  options: ExportOptions,
): Promise<Record<string, ExportedTensor>> {
  const { registry, config, info, checkpoint, source } = options;
  const model = registry.get("model", String(config.model));
  const g = new Graph(1);
  const input = g.input("x", info.features);
  const generated = model.generated?.(g, config, info);
  if (!generated) model.build(g, input, config, info);
  const take = (name: string, shape: readonly number[]) => {
    const t = checkpoint[name];
    if (!t) throw new RangeError(`${source}: tensor "${name}" is missing`);
    if (t.shape.join(",") !== shape.join(",")) {
      throw new RangeError(
        `${source}: tensor "${name}" has shape [${t.shape}], the model needs [${shape}]`,
      );
    }
    return toFloat32(t);
  };
  if (!generated) {
    return Object.fromEntries(
      g.params.map((p) => [p.name, { shape: [...p.shape], data: take(p.name, p.shape) }]),
    );
  }
  // Each generated tensor becomes a loss term (weight 0): the plan keeps terms' values readable.
  const names = Object.keys(generated);
  for (const name of names) {
    const t = generated[name]!;
    g.addLoss(g.reshape(t, [t.size]), 0, { name });
  }
  const gpu = options.gpu.scope(`export ${config.model}`);
  try {
    const kernels = options.kernels.withGpu(gpu);
    const plan = await ModelPlan.build({
      gpu,
      kernels,
      graph: g,
      ops: registry.ops,
      counters: createCounters(gpu),
      randomCounter: 2,
      seed: 0,
    });
    const flat = new Float32Array(plan.layout.total);
    for (const s of plan.layout.segments) flat.set(take(s.param.name, s.param.shape), s.offset);
    gpu.write(plan.params, flat);
    submitDispatches(gpu, await plan.evalForward(1));
    const out: Record<string, ExportedTensor> = {};
    for (const [i, name] of names.entries()) {
      const t = generated[name]!;
      out[name] = { shape: [...t.shape], data: await gpu.readF32(plan.terms[i]!.values, t.size) };
    }
    return out;
  } finally {
    gpu.dispose();
  }
}
