/**
 * `checkOp`: the gradient check for any op — elementwise or not, with parameters or not, built-in
 * or a plugin's. The op is built on a small graph at the shapes the user gives, run through the
 * same plan the trainer uses (forward, then backward to every input and parameter), and held
 * against a float64 reference: the forward value for value, and each gradient against central
 * finite differences of that reference.
 *
 * How it reads everything back in one pass: the loss is L = Σ_k w_k·y_k with random w, so
 * ∂L/∂y = w reaches the op's backward as an ordinary output gradient, and w is a parameter whose
 * gradient ∂L/∂w = y is the forward output itself (exactly: one product per value).
 *
 * @example A learnable-β swish, y = x·σ(βx), checked at [4, 6]
 * ```ts
 * import { checkOp, Gpu, KernelCache } from "webgpu-trainer";
 * import { swishBeta } from "./swish_beta.ts";
 * const gpu = await Gpu.open();
 * const kernels = new KernelCache(gpu);
 * const sig = (v: number) => 1 / (1 + Math.exp(-v));
 * const result = await checkOp(kernels, {
 *   inputs: { x: [4, 6] },
 *   build: (g, { x }) => swishBeta.apply(g, x, "act"),
 *   reference: (v) => v.x!.map((x) => x * sig(v["act.beta"]![0]! * x)),
 * });
 * console.log(result); // { forwardError: 3e-8, gradientErrors: { x: 2e-8, "act.beta": 1e-7 } }
 * ```
 *
 * @module
 */

import { Graph, type Tensor } from "../graph/graph.ts";
import * as nn from "../graph/nn.ts";
import { builtinOps, type OpTable } from "../graph/rules.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import { createCounters } from "../gpu/counters.ts";
import { storageArray } from "../gpu/device.ts";
import { ModelPlan } from "./plan.ts";
import { dispatchPhase, encodeSteps } from "./step.ts";

/** The parameter that carries the output's cotangent w (and reads back y as its gradient). */
const COTANGENT = "check.cotangent";

/** What {@link checkOp} checks. */
export interface OpCheckOptions {
  /** The op's inputs by name and shape (any rank; row-major values). */
  inputs: Record<string, readonly number[]>;
  /**
   * Builds the op on `g` from the input tensors and returns its output; it may declare
   * parameters (`g.param`), whose gradients are checked too.
   */
  build(g: Graph, inputs: Record<string, Tensor>): Tensor;
  /**
   * The op in float64: every input's and parameter's values by name (row-major) → the output's
   * values (row-major, as many as the output has).
   */
  reference(values: Record<string, Float64Array>): ArrayLike<number>;
  /** Values for some inputs or parameters (e.g. a positive scale); the rest are drawn. */
  values?: Record<string, ArrayLike<number>>;
  /** The range values are drawn from (default [-2, 2]). */
  low?: number;
  /** Upper end of that range (default 2). */
  high?: number;
  /** Seed of the drawn values and of the output's cotangent (default 2024). */
  seed?: number;
  /**
   * Largest allowed |GPU − reference| / (1 + |reference|), forward and gradients (default 1e-4;
   * 2e-2 under f16, whose values keep 11 significant bits).
   */
  tolerance?: number;
  /** Finite-difference step (default 1e-5; the differences are float64). */
  h?: number;
  /** "f16" stores the values as f16 (the op's rules must support it; `shader-f16` needed). */
  precision?: "f32" | "f16";
  /** The op table for ops applied by name (default: the built-ins). */
  ops?: OpTable;
  /** How errors name the op (default "op"). */
  label?: string;
}

/** What {@link checkOp} found. */
export interface OpCheckResult {
  /** Largest forward error, relative to 1 + |reference|. */
  forwardError: number;
  /** Largest gradient error per input and parameter, relative to 1 + |finite difference|. */
  gradientErrors: Record<string, number>;
}

/**
 * Checks an op's forward against a float64 reference and the gradient of every input and
 * parameter against central finite differences of that reference; throws naming the op, the
 * tensor and the worst element when an error exceeds the tolerance.
 */
export async function checkOp(
  kernels: KernelCache,
  options: OpCheckOptions,
): Promise<OpCheckResult> {
  const label = options.label ?? "op";
  const half = options.precision === "f16";
  const tolerance = options.tolerance ?? (half ? 2e-2 : 1e-4);
  const h = options.h ?? 1e-5;
  const low = options.low ?? -2;
  const high = options.high ?? 2;
  let state = (options.seed ?? 2024) >>> 0;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };

  // The graph: one flat input, sliced and reshaped into the op's inputs.
  const names = Object.keys(options.inputs);
  if (names.length === 0) throw new RangeError(`checkOp ${label}: give at least one input`);
  const g = new Graph(1);
  const sizes = names.map((n) => {
    const shape = options.inputs[n]!;
    if (!shape.every((d) => Number.isInteger(d) && d >= 1)) {
      throw new RangeError(`checkOp ${label}: input "${n}" has shape [${shape}]`);
    }
    return shape.reduce((a, b) => a * b, 1);
  });
  const total = sizes.reduce((a, b) => a + b, 0);
  const flat = g.input("check.inputs", total);
  const tensors: Record<string, Tensor> = {};
  let offset = 0;
  names.forEach((name, i) => {
    const part = nn.slice(g, flat, offset, sizes[i]!);
    tensors[name] = g.reshape(part, options.inputs[name]!);
    offset += sizes[i]!;
  });
  const y = options.build(g, tensors);
  const params = g.params.map((p) => p.name);
  for (const p of params) {
    if (p in options.inputs) {
      throw new RangeError(`checkOp ${label}: "${p}" names both an input and a parameter`);
    }
  }
  const w = g.param(COTANGENT, [1, y.size], { kind: "zeros" });
  g.addLoss(g.reshape(nn.linearWith(g, g.reshape(y, [1, y.size]), w), [1]), 1, {
    name: "check",
  });

  // The values: given or drawn, as f32 (or f16) numbers so both sides start alike.
  const round = (v: ArrayLike<number>) =>
    half
      ? Float64Array.from(new Float16Array(Array.from(v)))
      : Float64Array.from(Float32Array.from(v));
  const values: Record<string, Float64Array> = {};
  for (
    const [name, size] of [
      ...names.map((n, i): [string, number] => [n, sizes[i]!]),
      ...g.params.filter((p) => p.name !== COTANGENT).map((
        p,
      ): [string, number] => [p.name, p.size]),
    ]
  ) {
    const given = options.values?.[name];
    if (given && given.length !== size) {
      throw new RangeError(
        `checkOp ${label}: values.${name} has ${given.length} values, the tensor ${size}`,
      );
    }
    values[name] = round(
      given ?? Array.from({ length: size }, () => low + (high - low) * random()),
    );
  }
  for (const name of Object.keys(options.values ?? {})) {
    if (!(name in values)) {
      throw new RangeError(
        `checkOp ${label}: values.${name} names no input or parameter (known: ${
          Object.keys(values).join(", ")
        })`,
      );
    }
  }
  const cotangent = round(Array.from({ length: y.size }, () => 2 * random() - 1));

  const reference = (v: Record<string, Float64Array>): Float64Array => {
    const out = options.reference(v);
    if (out.length !== y.size) {
      throw new RangeError(
        `checkOp ${label}: the reference returned ${out.length} values, the output [${y.shape}] has ${y.size}`,
      );
    }
    return Float64Array.from(out);
  };
  const loss = (v: Record<string, Float64Array>) =>
    reference(v).reduce((s, yk, k) => s + cotangent[k]! * yk, 0);

  // The GPU: one training forward and backward through the plan.
  const gpu = kernels.gpu.scope(`checkOp ${label}`);
  try {
    const k = kernels.withGpu(gpu);
    const plan = await ModelPlan.build({
      gpu,
      kernels: k,
      graph: g,
      ops: options.ops ?? builtinOps(),
      counters: createCounters(gpu),
      randomCounter: 2,
      seed: 1,
      precision: half ? "f16" : "f32",
      inputGrad: { train: true },
    });
    const flatParams = new Float32Array(plan.layout.total);
    for (const s of plan.layout.segments) {
      flatParams.set(s.param.name === COTANGENT ? cotangent : values[s.param.name]!, s.offset);
    }
    gpu.write(plan.params, flatParams);
    const x = new Float32Array(total);
    names.forEach((n, i) => x.set(values[n]!, sizes.slice(0, i).reduce((a, b) => a + b, 0)));
    gpu.write(plan.x, storageArray(x, half ? "f16" : "f32"));
    const encoder = gpu.device.createCommandEncoder();
    encodeSteps(encoder, [
      { kind: "clear", label: "zero", buffer: plan.grads },
      dispatchPhase("pass", [...plan.refreshWeights, ...plan.trainForward, ...plan.backward]),
    ]);
    gpu.submit([encoder.finish()]);
    const grads = await gpu.readF32(plan.grads);
    const dx = await gpu.readF32(plan.trainInputGrad!, total);
    const segment = (name: string) => {
      const s = plan.layout.segments.find((s) => s.param.name === name)!;
      return grads.subarray(s.offset, s.offset + s.size);
    };

    const result: OpCheckResult = { forwardError: 0, gradientErrors: {} };
    const fail = (what: string, error: number, at: string) => {
      throw new RangeError(
        `checkOp ${label}: ${what} error ${error} exceeds ${tolerance} at ${at}`,
      );
    };
    const compare = (got: ArrayLike<number>, want: ArrayLike<number>) => {
      let worst = 0;
      let at = -1;
      for (let i = 0; i < want.length; i++) {
        const e = Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!));
        if (!(e <= worst)) [worst, at] = [Number.isNaN(e) ? NaN : e, i];
      }
      return { worst, at };
    };

    const yRef = reference(values);
    const fwd = compare(segment(COTANGENT), yRef);
    result.forwardError = fwd.worst;
    if (!(fwd.worst <= tolerance)) {
      fail(
        "forward",
        fwd.worst,
        `output[${fwd.at}]: GPU ${segment(COTANGENT)[fwd.at]}, reference ${yRef[fwd.at]}`,
      );
    }
    let inputOffset = 0;
    const gradOf = new Map<string, ArrayLike<number>>();
    names.forEach((n, i) => {
      gradOf.set(n, dx.subarray(inputOffset, inputOffset + sizes[i]!));
      inputOffset += sizes[i]!;
    });
    for (const p of params) gradOf.set(p, segment(p));
    for (const [name, got] of gradOf) {
      const v = values[name]!;
      const fd = new Float64Array(v.length);
      for (let i = 0; i < v.length; i++) {
        const keep = v[i]!;
        v[i] = keep + h;
        const plus = loss(values);
        v[i] = keep - h;
        const minus = loss(values);
        v[i] = keep;
        fd[i] = (plus - minus) / (2 * h);
      }
      const r = compare(got, fd);
      result.gradientErrors[name] = r.worst;
      if (!(r.worst <= tolerance)) {
        fail(
          `gradient of "${name}"`,
          r.worst,
          `${name}[${r.at}]: GPU ${got[r.at]}, finite difference ${fd[r.at]}`,
        );
      }
    }
    return result;
  } finally {
    gpu.dispose();
  }
}
