/**
 * webgpu-trainer: train neural networks, the MLP family first, with hand-written WGSL compute
 * kernels through WebGPU, headless, with nothing but Deno.
 *
 * This module is the library's public API: what plugins and scripts build on, by name. The
 * command line lives in `main.ts`; everything not exported here is internal and may change.
 * Plugins import it as `"webgpu-trainer"`; a script anywhere runs with the repository's import
 * map: `deno run -A --config /path/to/webgpu-trainer/deno.json my_script.ts`.
 *
 * @example Train the built-in MLP on the synthetic dataset from a script
 * ```ts
 * import { builtinRegistry, Gpu, KernelCache, resolveConfig, train } from "webgpu-trainer";
 * const gpu = await Gpu.open();
 * const registry = builtinRegistry();
 * const config = resolveConfig(registry, [
 *   { source: "script", values: { dataset: "synthetic", model: "mlp", epochs: 2 } },
 * ]);
 * const kernels = new KernelCache(gpu);
 * const result = await train({ gpu, kernels, registry, config, outDir: "runs/from-script" });
 * console.log(result.test_accuracy);
 * ```
 *
 * @example An optimizer in a few lines (see {@link defineOptimizer})
 * ```ts
 * import { defineOptimizer } from "webgpu-trainer";
 * export default defineOptimizer({
 *   name: "signum",
 *   description: "sign of the momentum",
 *   slots: ["m"],
 *   hyper: { beta: { default: 0.9, min: 0, max: 1, maxExclusive: true } },
 *   update: `m = hyper.beta * m + hyper.one_minus_beta * g;
 *     p = p - lr * sign(m);`,
 * });
 * ```
 *
 * @module
 */

// The GPU: a device, kernels compiled once, dispatches recorded once.
export {
  type AdapterReport,
  Gpu,
  GpuError,
  type GpuOptions,
  NoAdapterError,
  type Storage,
} from "./core/gpu/device.ts";
export {
  type Binding,
  type BufferRange,
  type BufferRef,
  type Constants,
  type Dispatch,
  type DispatchSpec,
  grid,
  KernelCache,
  type KernelSource,
  type StorageTypes,
  wgsl,
  type Workgroups,
} from "./core/gpu/kernels.ts";

// Graphs: what a model builds, and the rules of its ops.
export {
  Graph,
  type Init,
  kaimingUniform,
  lecunNormal,
  type LossTerm,
  type Node,
  type Param,
  type ParamOptions,
  type Tensor,
} from "./core/graph/graph.ts";
/** Layers that models build graphs from: `nn.linear`, `nn.layerNorm`, `nn.matmul`, … */
export * as nn from "./core/graph/nn.ts";
export {
  type BatchTargets,
  type GradSlot,
  type OpRule,
  OpTable,
  type RuleContext,
} from "./core/graph/rules.ts";
export {
  checkElementwiseOp,
  defineElementwiseOp,
  type ElementwiseCheck,
  type ElementwiseOp,
  type ElementwiseOpOptions,
  type ElementwiseParam,
} from "./core/graph/elementwise_op.ts";
export { checkOp, type OpCheckOptions, type OpCheckResult } from "./core/train/check_op.ts";

// Plugins: the kinds, the registry, the built-ins.
export {
  type BaseOptimizer,
  type Config,
  type DatasetInfo,
  type DatasetPlugin,
  type DatasetSplit,
  type DatasetSplits,
  type LossPlugin,
  type ModelPlugin,
  type OptimizerContext,
  type OptimizerPlugin,
  type OptimizerTensor,
  type Plugin,
  type PluginBase,
  Registry,
  type SamplerPlugin,
  type SchedulePlugin,
} from "./core/train/registry.ts";
export { type KeySpec, type KeyType } from "./core/train/keys.ts";
export { builtinRegistry } from "./plugins/mod.ts";
export { DataError, readDataFile } from "./core/io/data_files.ts";
export { checkDataset } from "./core/train/load_data.ts";
export {
  defineOptimizer,
  type HyperSpec,
  type OptimizerDefinition,
} from "./core/train/define_optimizer.ts";
export {
  checkOptimizer,
  type OptimizerCheck,
  type OptimizerCheckOptions,
  type ReferenceElement,
  type ReferenceUpdate,
} from "./core/train/check_optimizer.ts";
export {
  clearPhase,
  defaultStep,
  dispatchPhase,
  type PassOptions,
  type Phase,
  repeatPhase,
  type StepParts,
  type StepPosition,
  whenPhase,
} from "./core/train/step.ts";

// Training from a script.
export { PRESETS, resolveConfig, TRAIN_DEFAULTS } from "./core/train/config.ts";
export {
  DivergenceError,
  type EpochRecord,
  type StartInfo,
  train,
  type TrainEvents,
  type TrainOptions,
  type TrainResult,
  type WeightsEvaluation,
  type WindowRecord,
} from "./core/train/trainer.ts";
export {
  decodeSafetensors,
  type DType,
  encodeSafetensors,
  readSafetensors,
  type Safetensors,
  type Tensor as SafetensorsTensor,
  type TensorData,
  writeSafetensorsAtomic,
} from "./core/io/safetensors.ts";
export { seededRandom } from "./core/util/random.ts";
export { type RunPosition } from "./core/io/checkpoint.ts";
export { type MetricWindow, type WindowMeta } from "./core/gpu/metrics.ts";
export { type MixupTargets } from "./core/ops/softmax_cross_entropy.ts";

// Search: Optuna-compatible studies.
export {
  type CategoricalDistribution,
  type Choice,
  type Distribution,
  type FloatDistribution,
  type IntDistribution,
  type ParamValue,
} from "./core/search/distributions.ts";
export { type JsonValue, type PyFloat } from "./core/search/pyjson.ts";
export { type FileLockOptions } from "./core/search/file_lock.ts";
export { type FileBackendOptions, type JournalBackend } from "./core/search/file_storage.ts";
export {
  JournalStorage,
  openJournalStorage,
  type OpenStorageOptions,
  type TrialTemplate,
} from "./core/search/storage.ts";
export { JournalMemoryBackend } from "./core/search/memory_storage.ts";
export {
  type FrozenStudy,
  type FrozenTrial,
  type JournalRecord,
  StudyDirection,
  TrialState,
} from "./core/search/journal.ts";
export {
  type Direction,
  type Sampler,
  type SearchContext,
} from "./core/search/samplers/sampler.ts";
export { RandomSampler } from "./core/search/samplers/random.ts";
export { type TpeChoice, type TpeOptions, TpeSampler } from "./core/search/samplers/tpe.ts";
export { TPE_PROFILES, type TpeProfile } from "./core/search/samplers/parzen.ts";
export { GridSampler } from "./core/search/samplers/grid.ts";
export {
  MedianPruner,
  type MedianPrunerOptions,
  type Pruner,
} from "./core/search/pruners/median.ts";
export { type ParamSpec, parseSearchSpace, type SearchSpace } from "./core/search/space.ts";
export {
  type StaleOptions,
  Study,
  type StudyOptions,
  Trial,
  type TrialOutcome,
} from "./core/search/study.ts";
export {
  type ParamImportance,
  type ParamImportanceOptions,
  type ParamImportances,
  paramImportances,
} from "./core/search/importance/param_importances.ts";

// Charts: SVG without a browser (Apache ECharts' server-side renderer).
export { type ChartOption, type ChartSize, PALETTE, renderSvg } from "./core/io/charts.ts";
export {
  type CurveSeries,
  curvesOption,
  type CurvesOptions,
  curvesSvg,
  logScaleHelps,
} from "./core/io/curves.ts";
