/**
 * Typed bindings of the elementwise kernels `wgsl/scale.wgsl` and `wgsl/add.wgsl`. Each returns a
 * {@link Dispatch} made once (pipeline, bind group, uniform parameters) to be encoded every step.
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
  type Storage,
  wgsl,
} from "../gpu/kernels.ts";
import scaleSource from "../../wgsl/scale.wgsl" with { type: "text" };
import addSource from "../../wgsl/add.wgsl" with { type: "text" };

/** `wgsl/scale.wgsl`. */
export const SCALE_KERNEL: KernelSource = wgsl("scale", scaleSource);
/** `wgsl/add.wgsl`. */
export const ADD_KERNEL: KernelSource = wgsl("add", addSource);

/**
 * out = alpha · x over n values; with `out` omitted, x (f32) is scaled in place. `storage` gives
 * x's and out's element types (default f32): alpha = 1 with f32 → f16 is a conversion.
 */
export function scale(
  kernels: KernelCache,
  args: {
    x: BufferRef;
    out?: BufferRef;
    n: number;
    alpha: number;
    storage?: { x?: Storage; out?: Storage };
    label?: string;
  },
): Promise<Dispatch> {
  const label = args.label ?? "scale";
  const types = { X_T: args.storage?.x ?? "f32", Y_T: args.storage?.out ?? "f32" };
  if (!args.out && (types.X_T !== "f32" || types.Y_T !== "f32")) {
    throw new RangeError(`${label}: scaling in place is f32 only`);
  }
  checkBuffers(label, {
    x: [args.x, args.n, types.X_T],
    out: args.out ? [args.out, args.n, types.Y_T] : undefined,
  });
  const params = kernels.gpu.uniform(
    `${args.label ?? "scale"} params`,
    packUniform([["u32", args.n], ["f32", args.alpha]]),
  );
  return kernels.dispatch({
    kernel: SCALE_KERNEL,
    entry: args.out ? "scale" : "scale_in_place",
    storage: args.out ? types : {},
    bindings: args.out ? [args.x, args.out, params] : [args.x, params],
    workgroups: grid(args.n, 256),
    label: args.label,
  });
}

/**
 * out = a + b over n values of type `storage` (default f32), summed in f32; with `nb` < n, b holds
 * nb values repeated over a's leading axes (`b[i mod nb]`; nb must divide n).
 */
export async function add(
  kernels: KernelCache,
  args: {
    a: BufferRef;
    b: BufferRef;
    out: BufferRef;
    n: number;
    nb?: number;
    storage?: Storage;
    label?: string;
  },
): Promise<Dispatch> {
  const type = args.storage ?? "f32";
  const label = args.label ?? "add";
  const nb = args.nb ?? args.n;
  if (!Number.isInteger(nb) || nb < 1 || args.n % nb !== 0) {
    throw new RangeError(`${label}: b's ${nb} values do not divide a's ${args.n}`);
  }
  checkBuffers(label, {
    a: [args.a, args.n, type],
    b: [args.b, nb, type],
    out: [args.out, args.n, type],
  });
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([["u32", args.n], ["u32", nb]]),
  );
  return await kernels.dispatch({
    kernel: ADD_KERNEL,
    entry: nb === args.n ? "add" : "add_broadcast",
    storage: { X_T: type },
    bindings: [args.a, args.b, args.out, params],
    workgroups: grid(args.n, 256),
    label: args.label,
  });
}

/** acc += x over n values. */
export function addInPlace(
  kernels: KernelCache,
  args: { x: BufferRef; acc: BufferRef; n: number; label?: string },
): Promise<Dispatch> {
  const params = kernels.gpu.uniform(
    `${args.label ?? "add_in_place"} params`,
    packUniform([["u32", args.n]]),
  );
  return kernels.dispatch({
    kernel: ADD_KERNEL,
    entry: "add_in_place",
    bindings: [args.x, args.acc, params],
    workgroups: grid(args.n, 256),
    label: args.label,
  });
}
