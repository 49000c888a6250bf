/**
 * A float64 CPU trainer of SAM, ASAM, one-pass SAM (S²-SAM) and SSAM (Fisher and dynamic masks)
 * over the `mlp` model with softmax cross-entropy (algorithms.md §3): what one step of the `sam`
 * and `ssam` plugins means, written as plain loops over a flat parameter vector laid out like the
 * GPU's (padding between tensors included), with the base optimizer's float64 rule.
 */

import { type RefLinear, refLossAndGrads } from "./mlp_trainer.ts";
import type { RefSegment } from "./optimizer.ts";
import { randomScoreRef, topkMaskRef } from "./topk_mask.ts";
import type { Activation } from "../../core/ops/activation_ids.ts";

/** One tensor of the flat vector: where it starts, its size, and whether it decays. */
export interface RefTensor {
  offset: number;
  size: number;
  decay: boolean;
}

/** The base optimizer: one step of its rule on the flat params, in place. */
export type RefBase = (
  params: Float64Array,
  grads: Float64Array,
  segments: RefSegment[],
  lr: number,
  t: number,
) => void;

/** SSAM's mask settings. */
export interface RefMask {
  kind: "fisher" | "dynamic";
  sparsity: number;
  updateFreq: number;
  /** Fisher: rows of per-sample gradients (the epoch's first ones). */
  fisherSamples?: number;
  /** Dynamic: the death rate at epoch 0, and the scores. */
  dropRate?: number;
  drop?: "gradient" | "weight" | "random";
  growth?: "gradient" | "weight" | "random";
  seed?: number;
}

/** What the reference trains. */
export interface SamRefOptions {
  /** The flat parameters (the GPU layout's trainable prefix), updated in place. */
  params: Float64Array;
  /** The tensors in layout order: weight, bias per layer. */
  tensors: RefTensor[];
  /** Layer shapes, in order. */
  shapes: { inF: number; outF: number }[];
  activation: Activation;
  x: Float64Array;
  labels: ArrayLike<number>;
  features: number;
  classes: number;
  /** Rows of each step's batch (all its micro-batches). */
  batches: number[][];
  /** The epoch's row order of each step's epoch, and the epoch and step-in-epoch. */
  positions: { epoch: number; stepInEpoch: number; order: Uint32Array }[];
  epochs: number;
  lrs: ArrayLike<number>;
  weightDecay: number;
  base: RefBase;
  rho: number;
  adaptive?: boolean;
  onePass?: boolean;
  mask?: RefMask;
}

/** What the reference trained. */
export interface SamRefResult {
  /** The first-pass loss of each step (the one-pass loss at w + ε). */
  losses: number[];
  /** SSAM's mask after the last step (1 = perturbed). */
  mask?: Uint8Array;
  /** SSAM-F's Fisher score of the last mask update. */
  fisher?: Float64Array;
  /** The previous gradient one-pass SAM holds after the last step. */
  prevGrad?: Float64Array;
  /** The mask updates: step index and ones in the mask after it. */
  updates: { step: number; ones: number }[];
}

/** Layer views into the flat vector (updating one updates the other). */
function layerViews(o: SamRefOptions): RefLinear[] {
  return o.shapes.map((s, l) => {
    const w = o.tensors[2 * l]!;
    const b = o.tensors[2 * l + 1]!;
    return {
      w: o.params.subarray(w.offset, w.offset + w.size),
      b: o.params.subarray(b.offset, b.offset + b.size),
      inF: s.inF,
      outF: s.outF,
    };
  });
}

/** Trains every step of `o.batches`. */
export function samReference(o: SamRefOptions): SamRefResult {
  const n = o.params.length;
  const layers = layerViews(o);
  const model = { ...o, layers };
  const segments: RefSegment[] = o.tensors.map((t) => ({
    start: t.offset,
    end: t.offset + t.size,
    lrMult: 1,
    weightDecay: t.decay ? o.weightDecay : 0,
  }));
  const inSegment = new Uint8Array(n);
  for (const t of o.tensors) inSegment.fill(1, t.offset, t.offset + t.size);
  const parameters = o.tensors.reduce((s, t) => s + t.size, 0);
  const flat = (grads: Float64Array[]) => {
    const g = new Float64Array(n);
    o.tensors.forEach((t, i) => g.set(grads[i]!, t.offset));
    return g;
  };
  const gradAt = (rows: number[]) => {
    const r = refLossAndGrads(model, rows);
    return { loss: r.loss, g: flat(r.grads) };
  };
  const m = o.mask;
  const live = m ? Math.floor(parameters * (1 - m.sparsity)) : 0;
  let mask: Uint8Array | undefined = m
    ? (m.kind === "fisher" ? new Uint8Array(n) : undefined)
    : undefined;
  let fisher: Float64Array | undefined;
  let prev = o.onePass ? new Float64Array(n) : undefined;
  const updates: { step: number; ones: number }[] = [];
  const losses: number[] = [];
  const due = (p: { epoch: number; stepInEpoch: number }) =>
    m !== undefined && p.stepInEpoch === 0 && p.epoch % m.updateFreq === 0;
  const scores = (what: string, g: Float64Array, step: number, stream: number) =>
    Float64Array.from(
      { length: n },
      (_, i) =>
        what === "random"
          ? randomScoreRef(m!.seed ?? 0, stream, step, i)
          : Math.abs(what === "weight" ? o.params[i]! : g[i]!),
    );
  const dynamicUpdate = (g: Float64Array, step: number, epoch: number) => {
    const dr = m!.dropRate! * (1 + Math.cos((Math.PI * epoch) / o.epochs)) / 2;
    const deaths = Math.min(live - Math.floor(live * (1 - dr)), parameters - live);
    const old = mask!;
    const keep = topkMaskRef(
      scores(m!.drop!, g, step, 0x55a2),
      (i) => inSegment[i] === 1 && old[i] === 1,
      live - deaths,
    );
    const grow = topkMaskRef(
      scores(m!.growth!, g, step, 0x55a3),
      (i) => inSegment[i] === 1 && old[i] === 0,
      deaths,
    );
    mask = keep.map((v, i) => Math.max(v, grow[i]!));
    updates.push({ step, ones: mask.reduce((s, v) => s + v, 0) });
  };
  o.batches.forEach((rows, step) => {
    const pos = o.positions[step]!;
    if (m?.kind === "dynamic" && step === 0) {
      mask = topkMaskRef(
        scores("random", new Float64Array(n), 0, 0x55a1),
        (i) => inSegment[i] === 1,
        live,
      );
    }
    const perturbAlong = (v: Float64Array) => {
      const t = (i: number) => (o.adaptive ? Math.abs(o.params[i]!) : 1);
      let sq = 0;
      for (let i = 0; i < n; i++) sq += (t(i) * v[i]!) ** 2;
      const scale = o.rho / (Math.sqrt(sq) + 1e-12);
      for (let i = 0; i < n; i++) {
        o.params[i] = o.params[i]! + scale * t(i) ** 2 * v[i]! * (mask ? mask[i]! : 1);
      }
    };
    const w = Float64Array.from(o.params);
    let g: Float64Array;
    if (prev) {
      perturbAlong(prev);
      const r = gradAt(rows);
      losses.push(r.loss);
      g = r.g;
      if (m?.kind === "dynamic" && due(pos)) dynamicUpdate(g, step, pos.epoch);
      prev = Float64Array.from(g);
    } else {
      const first = gradAt(rows);
      losses.push(first.loss);
      perturbAlong(first.g);
      if (m?.kind === "dynamic" && due(pos)) dynamicUpdate(first.g, step, pos.epoch);
      g = gradAt(rows).g;
    }
    o.params.set(w);
    o.base(o.params, g, segments, o.lrs[step]!, step + 1);
    if (m?.kind === "fisher" && due(pos)) {
      fisher = new Float64Array(n);
      const count = Math.min(m.fisherSamples!, pos.order.length);
      for (let r = 0; r < count; r++) {
        const one = gradAt([pos.order[r]!]).g;
        for (let i = 0; i < n; i++) fisher[i] = fisher[i]! + one[i]! ** 2;
      }
      const f = fisher;
      mask = topkMaskRef(f, (i) => inSegment[i] === 1, live);
      updates.push({ step, ones: mask.reduce((s, v) => s + v, 0) });
    }
  });
  return { losses, mask, fisher, prevGrad: prev, updates };
}
