/**
 * What the GPU suite measures and for how long: its sections in order, each with a time budget
 * (together under 5 minutes on a GPU), the shapes and models of a full run, and the shrunk ones of
 * the `--small` rehearsal, which runs every section's code in a few minutes on a software adapter.
 *
 * @module
 */

/** The suite's sections, in the order they run. */
export const SUITE_SECTIONS = [
  "ceilings",
  "matmul",
  "steps",
  "tiny",
  "tfjs",
  "torch",
  "train",
  "tune",
  "tuned",
] as const;

/** A section's name. */
export type SectionName = typeof SUITE_SECTIONS[number];

/** What each section does, in the report. */
export const SECTION_TITLES: Record<SectionName, string> = {
  ceilings: "ceilings: FMA f32 and f16, copy",
  matmul: "matmul f32 and f16 at the square sizes and the training shapes (built-in tiles)",
  steps: "training step f32 and f16 of each BottleneckMLP (built-in tiles)",
  tiny: "a tiny MLP's steps/s",
  tfjs: "TF.js WebGPU on the same products and steps",
  torch: "PyTorch (CUDA fp32 with TF32 off; TF32 on for reference) on the same products and steps",
  train: "deno task train --json on the mnist-gpu preset",
  tune: "matmul tile tuning at the training shapes (cached per adapter)",
  tuned: "the training steps again with the tuned tiles",
};

/**
 * Seconds per section on a GPU: 255 in all, leaving 45 s of the 5 minutes for starting Deno and
 * the adapter, and for items that overrun their share (an item's warm-up, e.g. compiling its
 * pipelines, is not cut short; the section skips the items after it once its budget is spent).
 */
export const SECTION_BUDGETS: Record<SectionName, number> = {
  ceilings: 10,
  matmul: 30,
  steps: 45,
  tiny: 5,
  tfjs: 30,
  torch: 30,
  train: 40,
  tune: 30,
  tuned: 35,
};

/** A BottleneckMLP the suite trains (Scaling MLPs' shapes), with Adam, on 784 → 10 classes. */
export interface StepModel {
  /** "B_12-Wi_1024". */
  arch: string;
  depth: number;
  width: number;
  expansion: number;
  batch: number;
}

/** The row name of a model: "B_12-Wi_1024 b4096". */
export function modelLabel(m: StepModel): string {
  return `${m.arch} b${m.batch}`;
}

function model(depth: number, width: number, batch: number): StepModel {
  return { arch: `B_${depth}-Wi_${width}`, depth, width, expansion: 4, batch };
}

/** Everything that sizes a suite run. */
export interface SuitePlan {
  small: boolean;
  budgets: Record<SectionName, number>;
  /** Invocations of the FMA probe, and the run length its iterations grow to. */
  fmaInvocations: number;
  fmaTargetSeconds: number;
  /** Bytes the copy probe copies (capped by the adapter's binding size). */
  copyBytes: number;
  /** Copies per measurement. */
  copies: number;
  /** The square products (n³). */
  matmulSizes: number[];
  /** The training steps' models; their matmul shapes are the "training shapes". */
  models: StepModel[];
  tiny: StepModel;
  /** Products per measurement: at least `products`, enough for `targetFlop`, at most 1000. */
  products: number;
  targetFlop: number;
  repeats: number;
  /** Steps per measurement (the tiny MLP: `tinySteps`). */
  steps: number;
  tinySteps: number;
  /** Flags of `deno task train` after `--json --out DIR`. */
  trainFlags: string[];
  /** The training shapes tuned, largest share of the steps first (all of them on a GPU). */
  tuneShapes: number;
  /** Candidate tiles tried per shape, the built-in one first (all of them on a GPU). */
  tuneCandidates: number;
}

/**
 * A full run, or the `--small` rehearsal; `models` keeps the first N step models; `budgetScale`
 * multiplies every section's budget (a slower GPU; a test that must not skip items).
 */
export function suitePlan(
  options: { small: boolean; models?: number; budgetScale?: number },
): SuitePlan {
  const small = options.small;
  const models = small
    ? [model(4, 32, 8), model(6, 64, 32), model(6, 64, 128), model(12, 64, 32), model(12, 64, 128)]
    : [
      model(4, 512, 256),
      model(6, 1024, 1024),
      model(6, 1024, 4096),
      model(12, 1024, 1024),
      model(12, 1024, 4096),
    ];
  if (options.models !== undefined) {
    if (!Number.isInteger(options.models) || options.models < 1 || options.models > models.length) {
      throw new RangeError(
        `--models must be an integer from 1 to ${models.length}, got "${options.models}"`,
      );
    }
    models.length = options.models;
  }
  const scale = options.budgetScale ?? 1;
  if (!(Number.isFinite(scale) && scale > 0)) {
    throw new RangeError(`--budget-scale must be a positive number, got "${options.budgetScale}"`);
  }
  return {
    small,
    budgets: Object.fromEntries(
      SUITE_SECTIONS.map((name) => [name, SECTION_BUDGETS[name] * scale]),
    ) as Record<SectionName, number>,
    fmaInvocations: small ? 1 << 12 : 1 << 20,
    fmaTargetSeconds: small ? 0.02 : 0.05,
    copyBytes: small ? 1 << 20 : 1 << 28,
    copies: small ? 4 : 50,
    matmulSizes: small ? [128, 256] : [1024, 4096],
    models,
    tiny: small ? model(1, 16, 8) : model(2, 64, 64),
    products: small ? 4 : 20,
    targetFlop: small ? 2e7 : 2e10,
    repeats: small ? 2 : 5,
    steps: small ? 3 : 20,
    tinySteps: small ? 20 : 200,
    trainFlags: small
      ? ["--preset", "mnist-gpu", "--arch", "B_1-Wi_32", "--epochs", "1", "--train-samples", "1024"]
      : ["--preset", "mnist-gpu"],
    // A software adapter takes seconds per candidate: the rehearsal tunes 3 shapes over 4 tiles.
    tuneShapes: small ? 3 : Infinity,
    tuneCandidates: small ? 4 : Infinity,
  };
}

/** Products of [m,k]·[k,n] per measurement under `plan`. */
export function productCount(plan: SuitePlan, m: number, n: number, k: number): number {
  return Math.max(plan.products, Math.min(1000, Math.ceil(plan.targetFlop / (2 * m * n * k))));
}
