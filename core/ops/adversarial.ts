/**
 * Typed binding of `wgsl/adversarial.wgsl`: PGD's random start and the signed-gradient step of
 * FGSM and PGD, in pixel space with clipping, writing the model's normalised input.
 *
 * @module
 */

import {
  checkBuffers,
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  type Storage,
  wgsl,
} from "../gpu/kernels.ts";
import { normalisationStats } from "./gather.ts";
import src from "../../wgsl/adversarial.wgsl" with { type: "text" };

/** `wgsl/adversarial.wgsl`. */
export const ADVERSARIAL_KERNEL: KernelSource = wgsl("adversarial", src);

/** The Philox stream of PGD's random starts (ε index k uses stream ADVERSARIAL_STREAM + k). */
export const ADVERSARIAL_STREAM = 0x61647601;

/** What every entry of the kernel reads and writes. */
export interface AttackBuffers {
  /** The batch's clean raw values (bytes as 0..255, or f32 pixels), `batch·features`. */
  clean: GPUBuffer;
  /** The perturbed raw values, written. */
  adv: GPUBuffer;
  /** The model's input, written: `adv` normalised, in `storage`. */
  x: GPUBuffer;
  batch: number;
  features: number;
  /** Mean and std of byte/255 (or of the f32 value): one, one per channel or one per feature. */
  mean: readonly number[];
  std: readonly number[];
  /** Raw values are bytes (0..255): pixel range [0, 1] is [0, 255]; else f32 pixels in [0, 1]. */
  bytes: boolean;
  /** x's storage type; default f32. */
  storage?: Storage;
  label?: string;
}

/** The L∞ radius and step size, in [0, 1] pixel units. */
export interface AttackSize {
  eps: number;
  step: number;
}

function uniformFor(
  kernels: KernelCache,
  b: AttackBuffers,
  size: AttackSize,
  random: { seed: number; stream: number; cursorIndex: number },
  label: string,
) {
  const { batch, features } = b;
  for (const [name, v] of [["batch", batch], ["features", features]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${label}: ${name} must be a positive integer, got ${v}`);
    }
  }
  for (const [name, v] of [["eps", size.eps], ["step", size.step]] as const) {
    if (!(v >= 0 && v <= 1)) {
      throw new RangeError(`${label}: ${name} must be in [0, 1] (pixel units), got ${v}`);
    }
  }
  const count = b.mean.length;
  if (count < 1 || b.std.length !== count || features % count !== 0) {
    throw new RangeError(
      `${label}: mean and std need the same count of values dividing ${features}, got ${b.mean.length} and ${b.std.length}`,
    );
  }
  const n = batch * features;
  checkBuffers(label, {
    clean: [b.clean, n],
    adv: [b.adv, n],
    x: [b.x, n, b.storage],
  });
  const hi = b.bytes ? 255 : 1;
  const stats = kernels.gpu.storage(
    `${label} normalisation`,
    normalisationStats(b.mean, b.std, !b.bytes),
  );
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", n],
      ["u32", features],
      ["u32", features / count],
      ["u32", count],
      ["f32", size.eps * hi],
      ["f32", size.step * hi],
      ["f32", hi],
      ["u32", random.seed],
      ["u32", random.stream],
      ["u32", random.cursorIndex],
      ["u32", 0],
      ["u32", 0],
    ]),
  );
  return { n, stats, params };
}

/**
 * PGD's random start: adv = clip(clean + U(−ε, ε), [0, 1]) and x = adv normalised, the draws
 * keyed by (seed, stream) and the batch number `cursor[cursorIndex]`.
 */
export async function attackStart(
  kernels: KernelCache,
  b: AttackBuffers & {
    eps: number;
    seed: number;
    stream: number;
    cursor: GPUBuffer;
    cursorIndex?: number;
  },
): Promise<Dispatch> {
  const label = b.label ?? "attack_start";
  const cursorIndex = b.cursorIndex ?? 0;
  if (!Number.isInteger(cursorIndex) || cursorIndex < 0 || cursorIndex >= b.cursor.size / 4) {
    throw new RangeError(`${label}: cursorIndex ${cursorIndex} is outside "${b.cursor.label}"`);
  }
  const { n, stats, params } = uniformFor(kernels, b, { eps: b.eps, step: 0 }, {
    seed: b.seed >>> 0,
    stream: b.stream >>> 0,
    cursorIndex,
  }, label);
  return await kernels.dispatch({
    kernel: ADVERSARIAL_KERNEL,
    entry: "attack_start",
    storage: { X_T: b.storage ?? "f32" },
    bindings: [b.clean, b.adv, b.x, stats, params, b.cursor],
    workgroups: grid(n, 256),
    label,
  });
}

/**
 * One step along sign(grad), projected onto the ε-ball around the clean values and [0, 1]:
 * from the clean values with `fromClean` (FGSM, with step = ε), else from the previous `adv`
 * (PGD). Writes adv and x.
 */
export async function attackStep(
  kernels: KernelCache,
  b: AttackBuffers & AttackSize & { grad: GPUBuffer; fromClean: boolean },
): Promise<Dispatch> {
  const label = b.label ?? "attack_step";
  const { n, stats, params } = uniformFor(kernels, b, b, {
    seed: 0,
    stream: 0,
    cursorIndex: 0,
  }, label);
  checkBuffers(label, { grad: [b.grad, n] });
  return await kernels.dispatch({
    kernel: ADVERSARIAL_KERNEL,
    entry: "attack_step",
    constants: { FROM_CLEAN: b.fromClean },
    storage: { X_T: b.storage ?? "f32" },
    bindings: [b.clean, b.adv, b.x, stats, params, b.grad],
    workgroups: grid(n, 256),
    label,
  });
}
