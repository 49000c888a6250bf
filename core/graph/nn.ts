/**
 * Layers that models build their graph from. Each declares its parameters (named as the
 * equivalent PyTorch module's `state_dict`, Linear weights `[out, in]`) and applies one op whose
 * forward and backward live in `core/rules.ts`.
 *
 * @module
 */

import { type Graph, kaimingUniform, type Tensor } from "./graph.ts";
import { type Activation, activationId } from "../ops/activation_ids.ts";

function features(x: Tensor): number {
  if (x.shape.length !== 2) {
    throw new RangeError(
      `tensor "${x.name}" has shape [${x.shape}]; these layers take [batch, features]`,
    );
  }
  return x.shape[1]!;
}

/** Options of {@link linear}. */
export interface LinearOptions {
  /** Output features. */
  out: number;
  bias?: boolean;
  /** An activation fused into the matmul's epilogue; its pre-activation is saved for backward. */
  activation?: Activation;
}

/** y = act(x·Wᵀ + b), as `nn.Linear` (+ activation); parameters `<name>.weight`, `<name>.bias`. */
export function linear(g: Graph, x: Tensor, name: string, options: LinearOptions): Tensor {
  const inFeatures = features(x);
  const activation = options.activation ?? "identity";
  activationId(activation);
  const weight = g.param(`${name}.weight`, [options.out, inFeatures], kaimingUniform(inFeatures));
  const inputs = [x, weight];
  if (options.bias ?? true) {
    inputs.push(
      g.param(`${name}.bias`, [options.out], kaimingUniform(inFeatures), { decay: false }),
    );
  }
  const saved = activation === "identity" ? [] : [g.scratch(`${name}.pre`, [g.batch, options.out])];
  return g.apply("linear", inputs, [g.batch, options.out], { activation }, saved);
}

/** LayerNorm over features with affine γ (ones) and β (zeros): `<name>.weight`, `<name>.bias`. */
export function layerNorm(g: Graph, x: Tensor, name: string, eps = 1e-5): Tensor {
  const c = features(x);
  const gamma = g.param(`${name}.weight`, [c], { kind: "ones" }, { decay: false });
  const beta = g.param(`${name}.bias`, [c], { kind: "zeros" }, { decay: false });
  const stats = { f32: true };
  const saved = [
    g.scratch(`${name}.mean`, [g.batch], stats),
    g.scratch(`${name}.rstd`, [g.batch], stats),
  ];
  return g.apply("layernorm", [x, gamma, beta], x.shape, { eps }, saved);
}

/** y = f(x) elementwise. */
export function activation(g: Graph, x: Tensor, kind: Activation): Tensor {
  activationId(kind);
  return g.apply("activation", [x], x.shape, { activation: kind });
}

/** a + b (a residual connection). */
export function add(g: Graph, a: Tensor, b: Tensor): Tensor {
  if (a.size !== b.size) {
    throw new RangeError(
      `add: "${a.name}" [${a.shape}] and "${b.name}" [${b.shape}] differ in size`,
    );
  }
  return g.apply("add", [a, b], a.shape);
}

/** Inverted dropout with drop probability p (alpha dropout for SELU networks); identity in eval. */
export function dropout(g: Graph, x: Tensor, p: number, options: { alpha?: boolean } = {}): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout probability must be in [0, 1), got ${p}`);
  if (p === 0) return x;
  return g.apply("dropout", [x], x.shape, { p, alpha: options.alpha ?? false });
}
