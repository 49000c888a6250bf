/**
 * Elementwise ops that a plugin brings with its own WGSL: the kernel has two entry points with a
 * fixed binding layout, and {@link defineElementwiseOp} registers the op's forward and backward
 * rule so a model can apply it like a built-in. {@link checkElementwiseOp} tests such a kernel
 * against a float64 reference and its backward against central finite differences.
 *
 * The kernel's contract (n = number of values, dispatch ceil(n/256) workgroups of 256 over x and
 * y, index = gid.x + gid.y · num_workgroups.x · 256):
 * - `forward`:  bindings 0 x: array<f32> (read), 1 y: array<f32> (write), 2 params {n: u32}
 * - `backward`: bindings 0 x: array<f32> (read, the forward's input), 1 dy: array<f32> (read),
 *               2 dx: array<f32> (read_write), 3 params {n: u32, accumulate: u32};
 *               dx = dy·f'(x), or dx += dy·f'(x) when accumulate is 1.
 *
 * @example
 * ```ts
 * import { defineElementwiseOp } from "webgpu-trainer";
 * const squareplus = defineElementwiseOp("squareplus", `
 *   struct P { n: u32, accumulate: u32 }
 *   @group(0) @binding(0) var<storage, read> x: array<f32>;
 *   @group(0) @binding(1) var<storage, read_write> y: array<f32>;
 *   @group(0) @binding(2) var<uniform> p: P;
 *   @compute @workgroup_size(256) fn forward(@builtin(global_invocation_id) g: vec3<u32>,
 *       @builtin(num_workgroups) w: vec3<u32>) {
 *     let i = g.x + g.y * w.x * 256u;
 *     if (i < p.n) { y[i] = 0.5 * (x[i] + sqrt(x[i] * x[i] + 4.0)); }
 *   }
 *   @group(0) @binding(1) var<storage, read> dy: array<f32>;
 *   @group(0) @binding(2) var<storage, read_write> dx: array<f32>;
 *   @group(0) @binding(3) var<uniform> q: P;
 *   @compute @workgroup_size(256) fn backward(@builtin(global_invocation_id) g: vec3<u32>,
 *       @builtin(num_workgroups) w: vec3<u32>) {
 *     let i = g.x + g.y * w.x * 256u;
 *     if (i < q.n) {
 *       let d = dy[i] * 0.5 * (1.0 + x[i] / sqrt(x[i] * x[i] + 4.0));
 *       dx[i] = select(d, dx[i] + d, q.accumulate == 1u);
 *     }
 *   }`);
 * // In a model's build(): h = squareplus.apply(g, h);
 * ```
 *
 * @module
 */

import type { Graph, Tensor } from "./graph.ts";
import {
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  submitDispatches,
  wgsl,
} from "../gpu/kernels.ts";
import type { OpRule } from "./rules.ts";

/** Marks the objects {@link defineElementwiseOp} makes, so the plugin loader can find them. */
const ELEMENTWISE_OP = Symbol.for("webgpu-trainer.elementwise-op");

/** Whether a value is an op made by {@link defineElementwiseOp}. */
export function isElementwiseOp(value: unknown): value is ElementwiseOp {
  return typeof value === "object" && value !== null && ELEMENTWISE_OP in value;
}

/** A registered elementwise op. */
export interface ElementwiseOp {
  readonly name: string;
  readonly kernel: KernelSource;
  /** The op's forward and backward rule (attached to every node {@link apply} makes). */
  readonly rule: OpRule;
  /** Applies the op to a tensor of the graph. */
  apply(g: Graph, x: Tensor): Tensor;
  /** The forward dispatch over n values. */
  forward(kernels: KernelCache, x: GPUBuffer, y: GPUBuffer, n: number): Promise<Dispatch>;
  /** The backward dispatch over n values. */
  backward(
    kernels: KernelCache,
    x: GPUBuffer,
    dy: GPUBuffer,
    dx: GPUBuffer,
    n: number,
    accumulate: boolean,
  ): Promise<Dispatch>;
}

function whole(ref: unknown, what: string): GPUBuffer {
  if (ref instanceof GPUBuffer) return ref;
  throw new RangeError(`${what} must be a whole buffer`);
}

/**
 * Defines an elementwise op whose WGSL (`code`) has `forward` and `backward` entry points with
 * the binding layout described in this module's documentation. Nodes it applies carry its rule,
 * so a model uses it with no registration; a plugin module that exports it has its kernel
 * compiled at load time, so a compile error names the plugin file.
 */
export function defineElementwiseOp(name: string, code: string): ElementwiseOp {
  const kernel = wgsl(name, code);
  const rule: OpRule = {
    async forward(ctx, node) {
      const x = node.inputs[0]!;
      return [
        await op.forward(
          ctx.kernels,
          whole(ctx.value(x), `${name} input`),
          whole(ctx.value(node.output), `${name} output`),
          x.size,
        ),
      ];
    },
    async backward(ctx, node, dy) {
      const x = node.inputs[0]!;
      const slot = ctx.grad(x);
      if (!slot) return [];
      return [
        await op.backward(
          ctx.kernels,
          whole(ctx.value(x), `${name} input`),
          whole(dy, "gradient"),
          whole(slot.ref, "gradient"),
          x.size,
          slot.accumulate,
        ),
      ];
    },
  };
  const op: ElementwiseOp & { [ELEMENTWISE_OP]: true } = {
    [ELEMENTWISE_OP]: true,
    name,
    kernel,
    rule,
    apply: (g, x) => g.apply(name, [x], x.shape, {}, [], { rule }),
    forward(kernels, x, y, n) {
      const params = kernels.gpu.uniform(
        `${name} forward params`,
        packUniform([["u32", n], ["u32", 0]]),
      );
      return kernels.dispatch({
        kernel,
        entry: "forward",
        bindings: [x, y, params],
        workgroups: grid(n, 256),
        label: `${name} forward`,
      });
    },
    backward(kernels, x, dy, dx, n, accumulate) {
      const params = kernels.gpu.uniform(
        `${name} backward params`,
        packUniform([["u32", n], ["u32", accumulate ? 1 : 0]]),
      );
      return kernels.dispatch({
        kernel,
        entry: "backward",
        bindings: [x, dy, dx, params],
        workgroups: grid(n, 256),
        label: `${name} backward`,
      });
    },
  };
  return op;
}

/** What {@link checkElementwiseOp} found. */
export interface ElementwiseCheck {
  /** Largest |GPU − reference| of the forward, relative to 1 + |reference|. */
  forwardError: number;
  /** Largest |GPU − finite-difference| of the backward, relative to 1 + |finite difference|. */
  backwardError: number;
  /** Largest |GPU accumulate − (dx₀ + dx)| in accumulate mode. */
  accumulateError: number;
}

/**
 * Checks an elementwise op's kernel: its forward against `reference` in float64, and its
 * backward against dy·f'(x) with f' by central differences of `reference` (step h) — the gradient
 * check. Throws naming the op and the worst value when an error exceeds `tolerance`.
 */
export async function checkElementwiseOp(
  kernels: KernelCache,
  op: ElementwiseOp,
  reference: (x: number) => number,
  options: {
    samples?: number;
    low?: number;
    high?: number;
    tolerance?: number;
    h?: number;
    seed?: number;
  } = {},
): Promise<ElementwiseCheck> {
  const n = options.samples ?? 1025;
  const low = options.low ?? -4;
  const high = options.high ?? 4;
  const tolerance = options.tolerance ?? 1e-4;
  const h = options.h ?? 1e-5;
  let state = (options.seed ?? 12345) >>> 0;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
  const gpu = kernels.gpu;
  const x = Float32Array.from({ length: n }, () => low + (high - low) * random());
  const dy = Float32Array.from({ length: n }, () => 2 * random() - 1);
  const dx0 = Float32Array.from({ length: n }, () => 2 * random() - 1);
  const xb = gpu.storage(`${op.name} check x`, x);
  const yb = gpu.storage(`${op.name} check y`, new Float32Array(n).fill(Number.NaN));
  const dyb = gpu.storage(`${op.name} check dy`, dy);
  const dxb = gpu.storage(`${op.name} check dx`, new Float32Array(n).fill(Number.NaN));
  const accb = gpu.storage(`${op.name} check dx (accumulate)`, dx0);
  try {
    submitDispatches(gpu, [
      await op.forward(kernels, xb, yb, n),
      await op.backward(kernels, xb, dyb, dxb, n, false),
      await op.backward(kernels, xb, dyb, accb, n, true),
    ], `${op.name} check`);
    const [y, dx, acc] = [
      await gpu.readF32(yb, n),
      await gpu.readF32(dxb, n),
      await gpu.readF32(accb, n),
    ];
    const result: ElementwiseCheck = { forwardError: 0, backwardError: 0, accumulateError: 0 };
    const worst: Record<keyof ElementwiseCheck, string> = {
      forwardError: "",
      backwardError: "",
      accumulateError: "",
    };
    const note = (key: keyof ElementwiseCheck, error: number, what: string) => {
      if (!(error <= result[key])) {
        result[key] = Number.isNaN(error) ? Number.NaN : error;
        worst[key] = what;
      }
    };
    for (let i = 0; i < n; i++) {
      const xi = x[i]!;
      const f = reference(xi);
      const fd = dy[i]! * (reference(xi + h) - reference(xi - h)) / (2 * h);
      note(
        "forwardError",
        Math.abs(y[i]! - f) / (1 + Math.abs(f)),
        `x=${xi}: got ${y[i]}, reference ${f}`,
      );
      note(
        "backwardError",
        Math.abs(dx[i]! - fd) / (1 + Math.abs(fd)),
        `x=${xi}: got dx ${dx[i]}, finite difference ${fd}`,
      );
      note(
        "accumulateError",
        Math.abs(acc[i]! - (dx0[i]! + dx[i]!)) / (1 + Math.abs(dx0[i]! + dx[i]!)),
        `x=${xi}: accumulated ${acc[i]}, expected ${dx0[i]! + dx[i]!}`,
      );
    }
    for (const key of Object.keys(result) as (keyof ElementwiseCheck)[]) {
      if (!(result[key] <= tolerance)) {
        throw new RangeError(
          `op "${op.name}": ${key} ${result[key]} exceeds ${tolerance} at ${worst[key]}`,
        );
      }
    }
    return result;
  } finally {
    for (const b of [xb, yb, dyb, dxb, accb]) b.destroy();
  }
}
