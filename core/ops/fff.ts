/**
 * Typed bindings of `wgsl/fff.wgsl`, the Fast Feedforward layer's tree (algorithms.md §8): the
 * node probabilities with region leak, the leaves' mixture weights and their backward, the gate
 * that weights each leaf's hidden units by its mixture weight, the hardening entropy and its
 * backward, and the hard-path evaluation kernel that computes only the chosen leaf of each row.
 * Every buffer is f32.
 *
 * @module
 */

import {
  type BufferRef,
  checkBuffers,
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  wgsl,
} from "../gpu/kernels.ts";
import { checkRandomStream, type RandomStreamArgs } from "./dropout.ts";
import src from "../../wgsl/fff.wgsl" with { type: "text" };

/** `wgsl/fff.wgsl`. */
export const FFF_KERNEL: KernelSource = wgsl("fff", src);

/** The widest leaf {@link fffHard} takes (its workgroup array, `MAX_LEAF_WIDTH` in the kernel). */
export const FFF_MAX_LEAF_WIDTH = 1024;

/** The deepest tree: 2^D leaves index u32 bit fields, and D = 16 is 65536 leaves already. */
export const FFF_MAX_DEPTH = 16;

/** Invocations per workgroup of every entry point. */
const WG = 64;

/** A tree's shape: what every entry point takes. */
export interface FffShape {
  /** Rows of the batch. */
  rows: number;
  /** Tree depth D ≥ 1: 2^D − 1 nodes, 2^D leaves. */
  depth: number;
  /** Leaf width W (the gate and the hard path). */
  width?: number;
  label?: string;
}

/** Nodes 2^D − 1 and leaves 2^D of a depth. */
export function fffSizes(depth: number): { nodes: number; leaves: number } {
  return { nodes: 2 ** depth - 1, leaves: 2 ** depth };
}

function checkShape(args: FffShape, label: string): void {
  if (!Number.isInteger(args.rows) || args.rows < 1) {
    throw new RangeError(`${label}: rows must be an integer ≥ 1, got ${args.rows}`);
  }
  if (!Number.isInteger(args.depth) || args.depth < 1 || args.depth > FFF_MAX_DEPTH) {
    throw new RangeError(
      `${label}: depth must be an integer in [1, ${FFF_MAX_DEPTH}], got ${args.depth}`,
    );
  }
  if (args.width !== undefined && (!Number.isInteger(args.width) || args.width < 1)) {
    throw new RangeError(`${label}: leaf width must be an integer ≥ 1, got ${args.width}`);
  }
}

function uniform(
  kernels: KernelCache,
  args: FffShape & { outputs?: number; inputs?: number; leak?: number },
  label: string,
  key?: { seed: number; stream: number; counterIndex: number },
): GPUBuffer {
  const { nodes, leaves } = fffSizes(args.depth);
  return kernels.gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", args.rows],
      ["u32", nodes],
      ["u32", leaves],
      ["u32", args.depth],
      ["u32", args.width ?? 1],
      ["u32", args.outputs ?? 1],
      ["u32", args.inputs ?? 1],
      ["f32", args.leak ?? 0],
      ["u32", key?.seed ?? 0],
      ["u32", key?.stream ?? 0],
      ["u32", key?.counterIndex ?? 0],
      ["f32", 1 / nodes],
    ]),
  );
}

/** The region leak's key: a leak probability in [0, 1) and the Philox stream it draws from. */
export interface FffLeakArgs extends RandomStreamArgs {
  /** Probability of flipping each node's decision per row, in training; 0 = off. */
  leak: number;
}

function leakKey(args: FffLeakArgs, label: string) {
  if (!(args.leak >= 0 && args.leak < 1)) {
    throw new RangeError(`${label}: region leak must be in [0, 1), got ${args.leak}`);
  }
  return { seed: args.seed, stream: args.stream, counterIndex: checkRandomStream(args, label) };
}

/** probs = σ(z), each flipped to 1 − σ(z) with probability `leak` (z, probs [rows, N]). */
export async function fffProbs(
  kernels: KernelCache,
  args: FffShape & FffLeakArgs & { z: BufferRef; probs: BufferRef },
): Promise<Dispatch> {
  const label = args.label ?? "fff_probs";
  checkShape(args, label);
  const key = leakKey(args, label);
  const n = args.rows * fffSizes(args.depth).nodes;
  checkBuffers(label, { z: [args.z, n], probs: [args.probs, n] });
  return await kernels.dispatch({
    kernel: FFF_KERNEL,
    entry: "fff_probs",
    bindings: [uniform(kernels, args, label, key), args.z, args.probs, args.counters],
    workgroups: grid(n, WG),
    label,
  });
}

/** mix[r, ℓ] = the product of the branch probabilities on leaf ℓ's path (mix [rows, L]). */
export async function fffMixture(
  kernels: KernelCache,
  args: FffShape & { probs: BufferRef; mix: BufferRef },
): Promise<Dispatch> {
  const label = args.label ?? "fff_mixture";
  checkShape(args, label);
  const { nodes, leaves } = fffSizes(args.depth);
  checkBuffers(label, {
    probs: [args.probs, args.rows * nodes],
    mix: [args.mix, args.rows * leaves],
  });
  return await kernels.dispatch({
    kernel: FFF_KERNEL,
    entry: "fff_mixture",
    bindings: [uniform(kernels, args, label), args.probs, args.mix],
    workgroups: grid(args.rows * leaves, WG),
    label,
  });
}

/**
 * dz from dmix through the mixture and the (leaked) sigmoids; `accumulate` adds to dz. Must run
 * with the same step counter as its {@link fffProbs} (the leak is drawn again).
 */
export async function fffMixtureBackward(
  kernels: KernelCache,
  args: FffShape & FffLeakArgs & {
    probs: BufferRef;
    dmix: BufferRef;
    dz: BufferRef;
    accumulate?: boolean;
  },
): Promise<Dispatch> {
  const label = args.label ?? "fff_mixture_backward";
  checkShape(args, label);
  const key = leakKey(args, label);
  const { nodes, leaves } = fffSizes(args.depth);
  checkBuffers(label, {
    probs: [args.probs, args.rows * nodes],
    dmix: [args.dmix, args.rows * leaves],
    dz: [args.dz, args.rows * nodes],
  });
  return await kernels.dispatch({
    kernel: FFF_KERNEL,
    entry: "fff_mixture_backward",
    constants: { ACCUMULATE: args.accumulate ?? false },
    bindings: [uniform(kernels, args, label, key), args.probs, args.dz, args.counters, args.dmix],
    workgroups: grid(args.rows * nodes, WG),
    label,
  });
}

/** gated[r, ℓW + j] = hidden[r, ℓW + j] · mix[r, ℓ] (hidden, gated [rows, L·W]). */
export async function fffGate(
  kernels: KernelCache,
  args: FffShape & { width: number; hidden: BufferRef; mix: BufferRef; gated: BufferRef },
): Promise<Dispatch> {
  const label = args.label ?? "fff_gate";
  checkShape(args, label);
  const { leaves } = fffSizes(args.depth);
  const n = args.rows * leaves * args.width;
  checkBuffers(label, {
    hidden: [args.hidden, n],
    mix: [args.mix, args.rows * leaves],
    gated: [args.gated, n],
  });
  return await kernels.dispatch({
    kernel: FFF_KERNEL,
    entry: "fff_gate",
    bindings: [uniform(kernels, args, label), args.hidden, args.gated, args.mix],
    workgroups: grid(n, WG),
    label,
  });
}

/** dhidden = dgated · mix (written); dmix[r, ℓ] += Σ_j hidden · dgated over leaf ℓ's units. */
export async function fffGateBackward(
  kernels: KernelCache,
  args: FffShape & {
    width: number;
    hidden: BufferRef;
    mix: BufferRef;
    dgated: BufferRef;
    dhidden: BufferRef;
    dmix: BufferRef;
  },
): Promise<Dispatch> {
  const label = args.label ?? "fff_gate_backward";
  checkShape(args, label);
  const { leaves } = fffSizes(args.depth);
  const n = args.rows * leaves * args.width;
  checkBuffers(label, {
    hidden: [args.hidden, n],
    mix: [args.mix, args.rows * leaves],
    dgated: [args.dgated, n],
    dhidden: [args.dhidden, n],
    dmix: [args.dmix, args.rows * leaves],
  });
  return await kernels.dispatch({
    kernel: FFF_KERNEL,
    entry: "fff_gate_backward",
    bindings: [
      uniform(kernels, args, label),
      args.hidden,
      args.dhidden,
      args.mix,
      args.dgated,
      args.dmix,
    ],
    workgroups: grid(args.rows * leaves, WG),
    label,
  });
}

/** h[r] = the mean over the N nodes of H(σ(z[r, n])), p clamped to [1e-6, 1 − 1e-6]. */
export async function fffEntropy(
  kernels: KernelCache,
  args: FffShape & { z: BufferRef; entropy: BufferRef },
): Promise<Dispatch> {
  const label = args.label ?? "fff_entropy";
  checkShape(args, label);
  const { nodes } = fffSizes(args.depth);
  checkBuffers(label, { z: [args.z, args.rows * nodes], entropy: [args.entropy, args.rows] });
  return await kernels.dispatch({
    kernel: FFF_KERNEL,
    entry: "fff_entropy",
    bindings: [uniform(kernels, args, label), args.z, args.entropy],
    workgroups: grid(args.rows, WG),
    label,
  });
}

/** dz[r, n] = dh[r] · (−z·σ(z)(1 − σ(z)))/N inside the clamp, 0 outside; `accumulate` adds. */
export async function fffEntropyBackward(
  kernels: KernelCache,
  args: FffShape & { z: BufferRef; dentropy: BufferRef; dz: BufferRef; accumulate?: boolean },
): Promise<Dispatch> {
  const label = args.label ?? "fff_entropy_backward";
  checkShape(args, label);
  const n = args.rows * fffSizes(args.depth).nodes;
  checkBuffers(label, { z: [args.z, n], dentropy: [args.dentropy, args.rows], dz: [args.dz, n] });
  return await kernels.dispatch({
    kernel: FFF_KERNEL,
    entry: "fff_entropy_backward",
    constants: { ACCUMULATE: args.accumulate ?? false },
    bindings: [uniform(kernels, args, label), args.z, args.dz, args.dentropy],
    workgroups: grid(n, WG),
    label,
  });
}

/** The layer's weights, laid out as `nn.fff` declares them. */
export interface FffWeights {
  /** Node weights [N, in] and biases [N]. */
  nodeW: BufferRef;
  nodeB: BufferRef;
  /** Every leaf's first layer, leaf ℓ's rows ℓW..ℓW+W−1: [L·W, in], and [L·W]. */
  w1: BufferRef;
  b1: BufferRef;
  /** Every leaf's second layer, leaf ℓ's columns ℓW..ℓW+W−1: [out, L·W], and biases [L, out]. */
  w2: BufferRef;
  b2: BufferRef;
}

/**
 * The hard path of each row: D node dot products choose one leaf, and only that leaf's
 * W·(in + out) weights are read: y[r] = W2_ℓ·relu(W1_ℓ·x[r] + b1_ℓ) + b2_ℓ. One workgroup per row.
 */
export async function fffHard(
  kernels: KernelCache,
  args: FffShape & FffWeights & {
    width: number;
    inputs: number;
    outputs: number;
    x: BufferRef;
    y: BufferRef;
  },
): Promise<Dispatch> {
  const label = args.label ?? "fff_hard";
  checkShape(args, label);
  const { inputs, outputs, width } = args;
  for (const [name, v] of [["inputs", inputs], ["outputs", outputs]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${label}: ${name} must be an integer ≥ 1, got ${v}`);
    }
  }
  if (width > FFF_MAX_LEAF_WIDTH) {
    throw new RangeError(
      `${label}: leaf width ${width} is above the hard path's ${FFF_MAX_LEAF_WIDTH}; use a smaller --leaf-width`,
    );
  }
  const { nodes, leaves } = fffSizes(args.depth);
  checkBuffers(label, {
    x: [args.x, args.rows * inputs],
    y: [args.y, args.rows * outputs],
    nodeW: [args.nodeW, nodes * inputs],
    nodeB: [args.nodeB, nodes],
    w1: [args.w1, leaves * width * inputs],
    b1: [args.b1, leaves * width],
    w2: [args.w2, outputs * leaves * width],
    b2: [args.b2, leaves * outputs],
  });
  return await kernels.dispatch({
    kernel: FFF_KERNEL,
    // Rows of x, node_w and w1 start at multiples of 4 floats when `inputs` is one.
    entry: inputs % 4 === 0 ? "fff_hard_vec4" : "fff_hard",
    bindings: [
      uniform(kernels, args, label),
      args.x,
      args.y,
      args.nodeW,
      args.nodeB,
      args.w1,
      args.b1,
      args.w2,
      args.b2,
    ],
    workgroups: grid(args.rows, 1),
    label,
  });
}
