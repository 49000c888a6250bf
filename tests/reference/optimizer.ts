/**
 * Float64 references of `wgsl/optimizer.wgsl`: one optimizer step over a flat parameter vector
 * split into segments, updating `params` and the state arrays in place. Elements outside every
 * segment are left untouched.
 */

/** One tensor of the flat parameter vector: elements [start, end). */
export interface RefSegment {
  start: number;
  end: number;
  lrMult: number;
  weightDecay: number;
}

/** What changes from step to step. */
export interface RefStep {
  /** Unscaled gradients. */
  grads: ArrayLike<number>;
  /** Σg² of the unscaled gradients (as the reduction kernel hands it over). */
  sumSq: number;
  /** Scheduled learning rate of this step (before segment multipliers). */
  lr: number;
  /** Step number, 1 for the first step. */
  t: number;
  /** Clipping threshold of the scaled gradient's global norm; 0 = off. */
  maxNorm: number;
  gradScale: number;
}

/** gradScale · min(1, maxNorm / (‖g·gradScale‖ + 1e-6)), as torch.nn.utils.clip_grad_norm_. */
export function gradientFactor(step: RefStep): number {
  let factor = step.gradScale;
  if (step.maxNorm > 0) {
    const norm = Math.sqrt(step.sumSq) * Math.abs(step.gradScale);
    factor *= Math.min(1, step.maxNorm / (norm + 1e-6));
  }
  return factor;
}

/** torch.optim.SGD: g += λθ; b = g (t = 1) or μb + (1−τ)g; d = g + μb (Nesterov) or b. */
export function sgdRef(
  state: { params: Float64Array; m: Float64Array },
  segments: readonly RefSegment[],
  step: RefStep,
  hp: { momentum: number; dampening: number; nesterov: boolean },
): void {
  const { params, m } = state;
  const factor = gradientFactor(step);
  for (const seg of segments) {
    const lr = step.lr * seg.lrMult;
    for (let i = seg.start; i < seg.end; i++) {
      const g = step.grads[i]! * factor + seg.weightDecay * params[i]!;
      let d = g;
      if (hp.momentum !== 0) {
        const b = step.t === 1 ? g : hp.momentum * m[i]! + (1 - hp.dampening) * g;
        m[i] = b;
        d = hp.nesterov ? g + hp.momentum * b : b;
      }
      params[i] = params[i]! - lr * d;
    }
  }
}

/** torch.optim.Adam (L2 g += λθ) or, with `decoupled`, torch.optim.AdamW (θ ← θ(1 − lr·λ)). */
export function adamRef(
  state: { params: Float64Array; m: Float64Array; v: Float64Array },
  segments: readonly RefSegment[],
  step: RefStep,
  hp: { beta1: number; beta2: number; eps: number; decoupled: boolean },
): void {
  const { params, m, v } = state;
  const factor = gradientFactor(step);
  const bc1 = 1 - hp.beta1 ** step.t;
  const bc2 = 1 - hp.beta2 ** step.t;
  for (const seg of segments) {
    const lr = step.lr * seg.lrMult;
    for (let i = seg.start; i < seg.end; i++) {
      let theta = params[i]!;
      let g = step.grads[i]! * factor;
      if (hp.decoupled) theta *= 1 - lr * seg.weightDecay;
      else g += seg.weightDecay * theta;
      m[i] = hp.beta1 * m[i]! + (1 - hp.beta1) * g;
      v[i] = hp.beta2 * v[i]! + (1 - hp.beta2) * g * g;
      const denom = Math.sqrt(v[i]!) / Math.sqrt(bc2) + hp.eps;
      params[i] = theta - (lr / bc1) * m[i]! / denom;
    }
  }
}

/**
 * LION (scaling_mlps): θ ← θ(1 − lr·λ); θ ← θ − lr·sign(β1·m + (1−β1)g); m ← β2·m + (1−β2)g.
 * Returns the smallest |β1·m + (1−β1)g| / (|β1·m| + |(1−β1)g|) over nonzero arguments of sign: a
 * value near float32 rounding means the sign is not determined by f32 arithmetic.
 */
export function lionRef(
  state: { params: Float64Array; m: Float64Array },
  segments: readonly RefSegment[],
  step: RefStep,
  hp: { beta1: number; beta2: number },
): number {
  const { params, m } = state;
  const factor = gradientFactor(step);
  let margin = Infinity;
  for (const seg of segments) {
    const lr = step.lr * seg.lrMult;
    for (let i = seg.start; i < seg.end; i++) {
      const g = step.grads[i]! * factor;
      const a = hp.beta1 * m[i]!;
      const b = (1 - hp.beta1) * g;
      const c = a + b;
      if (c !== 0) margin = Math.min(margin, Math.abs(c) / (Math.abs(a) + Math.abs(b)));
      params[i] = params[i]! * (1 - lr * seg.weightDecay) - lr * Math.sign(c);
      m[i] = hp.beta2 * m[i]! + (1 - hp.beta2) * g;
    }
  }
  return margin;
}

/** The per-segment quantities of one LAMB step, for tests of the two passes. */
export interface LambTrace {
  /** The raw update r = m̂/(sqrt(v̂)+eps) + λθ (0 outside segments). */
  update: Float64Array;
  /** [s] = Σθ², [S + s] = Σr² of segment s before the update (S segments). */
  norms: Float64Array;
  /** Per segment trust ratio applied. */
  trust: Float64Array;
}

/**
 * timm's Lamb (bias correction, grad averaging): m, v; r = m̂/(sqrt(v̂)+eps) + λθ;
 * θ ← θ − lr·trust·r, trust = ‖θ‖/‖r‖ per segment (1 when either is 0), applied when λ ≠ 0 or
 * `alwaysAdapt`; `trustClip` caps it at 1.
 */
export function lambRef(
  state: { params: Float64Array; m: Float64Array; v: Float64Array },
  segments: readonly RefSegment[],
  step: RefStep,
  hp: { beta1: number; beta2: number; eps: number; alwaysAdapt: boolean; trustClip: boolean },
): LambTrace {
  const { params, m, v } = state;
  const factor = gradientFactor(step);
  const bc1 = 1 - hp.beta1 ** step.t;
  const bc2 = 1 - hp.beta2 ** step.t;
  const update = new Float64Array(params.length);
  const norms = new Float64Array(2 * segments.length);
  const trust = new Float64Array(segments.length);
  segments.forEach((seg, s) => {
    let wSq = 0;
    let rSq = 0;
    for (let i = seg.start; i < seg.end; i++) {
      const g = step.grads[i]! * factor;
      m[i] = hp.beta1 * m[i]! + (1 - hp.beta1) * g;
      v[i] = hp.beta2 * v[i]! + (1 - hp.beta2) * g * g;
      const denom = Math.sqrt(v[i]!) / Math.sqrt(bc2) + hp.eps;
      update[i] = m[i]! / bc1 / denom + seg.weightDecay * params[i]!;
      wSq += params[i]! ** 2;
      rSq += update[i]! ** 2;
    }
    norms[s] = wSq;
    norms[segments.length + s] = rSq;
    let ratio = 1;
    if ((seg.weightDecay !== 0 || hp.alwaysAdapt) && wSq > 0 && rSq > 0) {
      ratio = Math.sqrt(wSq) / Math.sqrt(rSq);
      if (hp.trustClip) ratio = Math.min(ratio, 1);
    }
    trust[s] = ratio;
    const lr = step.lr * seg.lrMult;
    for (let i = seg.start; i < seg.end; i++) params[i] = params[i]! - lr * ratio * update[i]!;
  });
  return { update, norms, trust };
}
