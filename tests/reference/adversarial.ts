/**
 * Float64 references of `wgsl/adversarial.wgsl` (PGD's random start, the FGSM/PGD step) and of
 * the normalisation the evaluation kernels share with the gather.
 */

import { philoxUniform, philoxWord } from "./philox.ts";

/** x = (v·k − mean_s)/std_s per value, s = (j mod D) / (D / S), k = 1/255 for bytes. */
export function normaliseRef(
  raw: ArrayLike<number>,
  features: number,
  mean: readonly number[],
  std: readonly number[],
  bytes: boolean,
): Float64Array {
  const plane = features / mean.length;
  const unit = bytes ? 1 / 255 : 1;
  return Float64Array.from(raw, (v, i) => {
    const s = Math.floor((i % features) / plane);
    return (v * unit - mean[s]!) / std[s]!;
  });
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** adv = clip(clean + ε_raw·(2u − 1), [0, hi]) with u from Philox (seed, stream, batch, i). */
export function attackStartRef(
  clean: ArrayLike<number>,
  a: { epsRaw: number; hi: number; seed: number; stream: number; batchIndex: number },
): Float64Array {
  return Float64Array.from(clean, (c, i) => {
    const u = philoxUniform(philoxWord(a.seed, a.stream, a.batchIndex, i));
    return clamp(c + a.epsRaw * (2 * u - 1), 0, a.hi);
  });
}

/** adv = clip(clip(base + η·sign(g), clean ± ε), [0, hi]), base = clean (FGSM) or adv (PGD). */
export function attackStepRef(
  clean: ArrayLike<number>,
  adv: ArrayLike<number>,
  grad: ArrayLike<number>,
  a: { epsRaw: number; stepRaw: number; hi: number; fromClean: boolean },
): Float64Array {
  return Float64Array.from(clean, (c, i) => {
    const base = a.fromClean ? c : adv[i]!;
    const moved = clamp(base + a.stepRaw * Math.sign(grad[i]!), c - a.epsRaw, c + a.epsRaw);
    return clamp(moved, 0, a.hi);
  });
}
