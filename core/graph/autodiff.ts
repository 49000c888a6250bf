/**
 * Reverse-mode autodiff over a {@link Graph}: walks the nodes backwards from the loss terms'
 * seeds, asking each op's rule (`rules.ts`) to push its output gradient to its inputs — to
 * trainable parameters and to any tensor asked for (the input, for adversarial examples), through
 * any tensor on the way (a hypernetwork's generated weights are activations like any other). Gradients of activations are
 * written by their first contribution and accumulated by later ones; a gradient passed through
 * unchanged (a residual add) shares the buffer instead of copying it, copied only if it would be
 * accumulated into while another tensor still reads it.
 *
 * @module
 */

import type { Graph, Node, Tensor } from "./graph.ts";
import type { BufferRef, Dispatch } from "../gpu/kernels.ts";
import { addInPlace, scale } from "../ops/elementwise.ts";
import type { BufferPool } from "../gpu/pool.ts";
import type { GradSlot, OpTable, RuleContext } from "./rules.ts";

/** What backward needs from the plan. */
export interface BackwardOptions {
  graph: Graph;
  /** The run's op rules (nodes may carry their own). */
  ops: OpTable;
  /** The tensors whose gradients seed the pass (the loss terms), and those gradients. */
  seeds: readonly { tensor: Tensor; grad: GPUBuffer }[];
  /** Non-parameter tensors whose gradient is wanted too (the input); default none. */
  wanted?: readonly Tensor[];
  pool: BufferPool;
  /** The gradient segment of a parameter in the flat gradient buffer. */
  paramGrad(t: Tensor): BufferRef;
  /** Whether a parameter is trained (frozen ones get no gradient). */
  trainable(t: Tensor): boolean;
  /** The forward context (values, random streams) the rules read. */
  base: Omit<RuleContext, "grad" | "passGrad" | "temp">;
  /** Called after a node's backward is recorded: its values are dead from here on. */
  done(node: Node): void;
}

/** The recorded backward pass. */
export interface BackwardPass {
  /** Its dispatches, in execution order. */
  dispatches: Dispatch[];
  /** Where each wanted tensor's gradient ends up (absent: nothing depends on it). */
  wanted: Map<Tensor, GPUBuffer>;
}

/** Records the backward pass. */
export async function backward(options: BackwardOptions): Promise<BackwardPass> {
  const { graph, pool, base } = options;
  const kernels = base.kernels;
  const needs = gradientNeeds(graph, options.trainable, options.wanted ?? []);
  const grads = new Map<Tensor, GPUBuffer>();
  const owners = new Map<GPUBuffer, Set<Tensor>>();
  const finished = new Set<Node>();
  for (const seed of options.seeds) {
    grads.set(seed.tensor, seed.grad);
    owners.set(seed.grad, new Set([...owners.get(seed.grad) ?? [], seed.tensor]));
  }

  const share = (t: Tensor, buffer: GPUBuffer) => {
    grads.set(t, buffer);
    const set = owners.get(buffer) ?? new Set();
    set.add(t);
    owners.set(buffer, set);
  };
  // Another tensor still to be read from this buffer: its producer's backward is not recorded yet.
  const readLater = (buffer: GPUBuffer, except: Tensor) =>
    [...owners.get(buffer) ?? []].some((o) =>
      o !== except && o.producer && !finished.has(o.producer)
    );

  const out: Dispatch[] = [];
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i]!;
    const dy = grads.get(node.output);
    if (!dy || !needs.has(node.output)) {
      finished.add(node);
      continue;
    }
    const temps: GPUBuffer[] = [];
    const copyJobs: { from: GPUBuffer; to: GPUBuffer; n: number }[] = [];
    const grad = (t: Tensor): GradSlot | undefined => {
      if (!needs.has(t)) return undefined;
      if (t.kind === "param") return { ref: options.paramGrad(t), accumulate: true };
      const existing = grads.get(t);
      if (!existing) {
        const buffer = pool.acquire(t.size, `d ${t.name}`);
        share(t, buffer);
        return { ref: buffer, accumulate: false };
      }
      if (readLater(existing, t)) {
        // Copy on write: another tensor still reads the shared gradient as it is.
        const copy = pool.acquire(t.size, `d ${t.name}`);
        copyJobs.push({ from: existing, to: copy, n: t.size });
        owners.get(existing)!.delete(t);
        share(t, copy);
        return { ref: copy, accumulate: true };
      }
      return { ref: existing, accumulate: true };
    };
    const ctx: RuleContext = {
      ...base,
      grad,
      async passGrad(t, from) {
        if (!needs.has(t)) return [];
        if (!(from instanceof GPUBuffer)) throw new RangeError("passGrad takes a whole buffer");
        if (t.kind !== "param" && !grads.has(t)) {
          share(t, from);
          return [];
        }
        const acc = grad(t)!.ref;
        if (acc === from) return [await scale(kernels, { x: acc, n: t.size, alpha: 2 })];
        return [await addInPlace(kernels, { x: from, acc, n: t.size, label: `d ${t.name} +=` })];
      },
      temp(count, label) {
        const buffer = pool.acquire(count, label);
        temps.push(buffer);
        return buffer;
      },
    };
    const dispatches = await options.ops.of(node).backward(ctx, node, dy);
    // Copies are taken before the rule's dispatches accumulate into them.
    for (const job of copyJobs) {
      out.push(
        await scale(kernels, {
          x: job.from,
          out: job.to,
          n: job.n,
          alpha: 1,
          label: "copy gradient",
        }),
      );
    }
    out.push(...dispatches);
    finished.add(node);
    for (const t of temps) pool.release(t);
    // A gradient buffer is free once every tensor sharing it has had its producer's backward.
    const sharing = [...owners.get(dy) ?? []];
    if (sharing.every((o) => o.producer && finished.has(o.producer))) pool.release(dy);
    options.done(node);
  }
  const wanted = new Map<Tensor, GPUBuffer>();
  for (const t of options.wanted ?? []) {
    const g = grads.get(t);
    if (g) wanted.set(t, g);
  }
  return { dispatches: out, wanted };
}

/**
 * Tensors that need a gradient: trainable parameters, the `wanted` tensors, and everything
 * computed from them.
 */
export function gradientNeeds(
  graph: Graph,
  trainable: (t: Tensor) => boolean,
  wanted: readonly Tensor[] = [],
): Set<Tensor> {
  const needs = new Set<Tensor>(wanted);
  for (const p of graph.params) if (trainable(p.tensor)) needs.add(p.tensor);
  for (const node of graph.nodes) {
    if (node.inputs.some((t) => needs.has(t))) needs.add(node.output);
  }
  return needs;
}
