/**
 * Typed bindings of the elementwise kernels `wgsl/scale.wgsl` and `wgsl/add.wgsl`. Each returns a
 * {@link Dispatch} made once (pipeline, bind group, uniform parameters) to be encoded every step.
 *
 * @module
 */

import {
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  wgsl,
} from "../kernels.ts";
import scaleSource from "../../wgsl/scale.wgsl" with { type: "text" };
import addSource from "../../wgsl/add.wgsl" with { type: "text" };

/** `wgsl/scale.wgsl`. */
export const SCALE_KERNEL: KernelSource = wgsl("scale", scaleSource);
/** `wgsl/add.wgsl`. */
export const ADD_KERNEL: KernelSource = wgsl("add", addSource);

/** out = alpha · x over n values; with `out` omitted, x is scaled in place. */
export function scale(
  kernels: KernelCache,
  args: { x: GPUBuffer; out?: GPUBuffer; n: number; alpha: number; label?: string },
): Promise<Dispatch> {
  const params = kernels.gpu.uniform(
    `${args.label ?? "scale"} params`,
    packUniform([["u32", args.n], ["f32", args.alpha]]),
  );
  return kernels.dispatch({
    kernel: SCALE_KERNEL,
    entry: args.out ? "scale" : "scale_in_place",
    bindings: args.out ? [args.x, args.out, params] : [args.x, params],
    workgroups: grid(args.n, 256),
    label: args.label,
  });
}

/** out = a + b over n values. */
export function add(
  kernels: KernelCache,
  args: { a: GPUBuffer; b: GPUBuffer; out: GPUBuffer; n: number; label?: string },
): Promise<Dispatch> {
  const params = kernels.gpu.uniform(
    `${args.label ?? "add"} params`,
    packUniform([["u32", args.n]]),
  );
  return kernels.dispatch({
    kernel: ADD_KERNEL,
    entry: "add",
    bindings: [args.a, args.b, args.out, params],
    workgroups: grid(args.n, 256),
    label: args.label,
  });
}

/** acc += x over n values. */
export function addInPlace(
  kernels: KernelCache,
  args: { x: GPUBuffer; acc: GPUBuffer; n: number; label?: string },
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
