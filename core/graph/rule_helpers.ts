/**
 * Small helpers the built-in op rules share: a tensor as rows × columns, whole-buffer checks, the
 * common storage type of an op's values.
 *
 * @module
 */

import type { Node, Tensor } from "./graph.ts";
import type { BufferRef } from "../gpu/kernels.ts";
import type { Storage } from "../gpu/device.ts";
import type { RuleContext } from "./rules.ts";

/** A tensor as [rows, columns] over its last axis. */
export function rowsCols(t: Tensor): [number, number] {
  const cols = t.shape.length === 1 ? 1 : t.shape[t.shape.length - 1]!;
  return [t.size / cols, cols];
}

/** The buffer of a whole-buffer ref; a range is an error naming `what`. */
export function asBuffer(ref: BufferRef, what: string): GPUBuffer {
  if (ref instanceof GPUBuffer) return ref;
  throw new RangeError(`${what} must be a whole buffer, got a range of "${ref.buffer.label}"`);
}

/** The common storage type of tensors an op reads and writes as one kind (its kernel's alias). */
export function sameStorage(ctx: RuleContext, node: Node, tensors: readonly Tensor[]): Storage {
  const types = new Set(tensors.map((t) => ctx.storage(t)));
  if (types.size > 1) {
    throw new RangeError(
      `op "${node.op}" (${node.output.name}): ${
        tensors.map((t) => `${t.name} is ${ctx.storage(t)}`).join(", ")
      }; its kernel needs them of one type`,
    );
  }
  return [...types][0] ?? "f32";
}

/** A short name of a node for dispatch labels. */
export function nodeName(node: Node): string {
  return String(node.attrs.name ?? node.output.name);
}
