/**
 * Elementwise ops that a plugin brings with its own WGSL: the kernel has two entry points with a
 * fixed binding layout, and {@link defineElementwiseOp} registers the op's forward and backward
 * rule so a model can apply it like a built-in. {@link checkElementwiseOp} tests such a kernel
 * against a float64 reference and its backward against central finite differences; `checkOp`
 * (core/train/check_op.ts) checks any op, parameters included.
 *
 * The kernel's contract (n = number of values, dispatch ceil(n/256) workgroups of 256 over x and
 * y, index = gid.x + gid.y · num_workgroups.x · 256):
 * - `forward`:  bindings 0 x: array<f32> (read), 1 y: array<f32> (write), 2 params {n: u32}
 * - `backward`: bindings 0 x: array<f32> (read, the forward's input), 1 dy: array<f32> (read),
 *               2 dx: array<f32> (read_write), 3 params {n: u32, accumulate: u32};
 *               dx = dy·f'(x), or dx += dy·f'(x) when accumulate is 1.
 *
 * With `f16: true` the kernel declares `alias X_T = f32;` and `alias Y_T = f32;` and types x as
 * `array<X_T>`, y as `array<Y_T>` (converting: `f32(x[i])`, `Y_T(v)`); under precision "f16"
 * the loader turns them into f16. Gradients (dy, dx) stay f32.
 *
 * With a learnable `param` (a vector θ of `size` values; element i uses θ[i % size], so size 1 is
 * a scalar and size = the last axis is one value per channel) both entry points also bind
 * θ: array<f32> (read) — binding 3 in `forward`, 4 in `backward` — and `backward` writes element
 * i's contribution dy·∂f/∂θ to dtheta[i] (binding 5, array<f32>, written, not accumulated); the
 * framework sums those into θ's gradient. Under `f16: true` θ is `array<P_T>` with
 * `alias P_T = f32;`.
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

import type { Graph, Init, Tensor } from "./graph.ts";
import {
  type BufferRef,
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  type StorageTypes,
  submitDispatches,
  wgsl,
} from "../gpu/kernels.ts";
import { biasGrad } from "../ops/bias_grad.ts";
import type { OpRule } from "./rules.ts";

/** Marks the objects {@link defineElementwiseOp} makes, so the plugin loader can find them. */
const ELEMENTWISE_OP = Symbol.for("webgpu-trainer.elementwise-op");

/** Whether a value is an op made by {@link defineElementwiseOp}. */
export function isElementwiseOp(value: unknown): value is ElementwiseOp {
  return typeof value === "object" && value !== null && ELEMENTWISE_OP in value;
}

/** A learnable parameter of an elementwise op: θ of `size` values, element i uses θ[i % size]. */
export interface ElementwiseParam {
  /** Its name after the layer's: `apply(g, x, "act1")` makes the parameter `act1.<name>`. */
  name: string;
  /** Values in θ (default 1: a scalar); the input's element count must be a multiple. */
  size?: number;
  /** Its initial value, e.g. `{ kind: "ones" }`. */
  init: Init;
  /** Whether weight decay applies to it (default false, as for biases). */
  decay?: boolean;
}

/** Options of {@link defineElementwiseOp}. */
export interface ElementwiseOpOptions {
  /** The kernel types x, y (and θ) through `X_T`, `Y_T` (`P_T`): the op runs under f16 too. */
  f16?: boolean;
  /** A learnable parameter bound as θ (see the module documentation). */
  param?: ElementwiseParam;
}

/** A registered elementwise op. */
export interface ElementwiseOp {
  /** The op's name: the graph's node op, and the kernel's label. */
  readonly name: string;
  /** Its WGSL: `forward` and `backward` entry points (see the module documentation). */
  readonly kernel: KernelSource;
  /** The op's forward and backward rule (attached to every node {@link apply} makes). */
  readonly rule: OpRule;
  /** Its learnable parameter, if it has one. */
  readonly param?: Required<ElementwiseParam>;
  /**
   * Applies the op to a tensor of the graph; an op with a parameter needs the layer's `name`
   * (its parameter is `<name>.<param name>`).
   */
  apply(g: Graph, x: Tensor, name?: string): Tensor;
  /** The forward dispatch over n values (θ for an op with a parameter). */
  forward(
    kernels: KernelCache,
    x: BufferRef,
    y: BufferRef,
    n: number,
    options?: { theta?: BufferRef; storage?: StorageTypes },
  ): Promise<Dispatch>;
  /**
   * The backward dispatch over n values; an op with a parameter also takes θ and writes each
   * element's contribution to `dtheta` (n values).
   */
  backward(
    kernels: KernelCache,
    x: BufferRef,
    dy: BufferRef,
    dx: BufferRef,
    n: number,
    accumulate: boolean,
    options?: { theta?: BufferRef; dtheta?: BufferRef; storage?: StorageTypes },
  ): Promise<Dispatch>;
}

/**
 * Defines an elementwise op whose WGSL (`code`) has `forward` and `backward` entry points with
 * the binding layout described in this module's documentation. Nodes it applies carry its rule,
 * so a model uses it with no registration; a plugin module that exports it has its kernel
 * compiled at load time, so a compile error names the plugin file.
 */
export function defineElementwiseOp(
  name: string,
  code: string,
  options: ElementwiseOpOptions = {},
): ElementwiseOp {
  const kernel = wgsl(name, code);
  const param = options.param ? { size: 1, decay: false, ...options.param } : undefined;
  if (param && !(Number.isInteger(param.size) && param.size >= 1)) {
    throw new RangeError(`op "${name}": param.size must be a positive integer, got ${param.size}`);
  }
  if (options.f16) {
    const aliases = ["X_T", "Y_T", ...(param ? ["P_T"] : [])];
    const missing = aliases.filter((a) =>
      !new RegExp(`^\\s*alias\\s+${a}\\s*=\\s*f32\\s*;`, "m").test(code)
    );
    if (missing.length > 0) {
      throw new RangeError(
        `op "${name}": f16: true needs the kernel to declare ${
          missing.map((a) => `\`alias ${a} = f32;\``).join(", ")
        } at the start of a line and to type its values with them (see defineElementwiseOp)`,
      );
    }
  }
  const types = (x: "f32" | "f16", y: "f32" | "f16", p: "f32" | "f16"): StorageTypes =>
    options.f16 ? { X_T: x, Y_T: y, ...(param ? { P_T: p } : {}) } : {};
  const rule: OpRule = {
    f16: options.f16 ?? false,
    async forward(ctx, node) {
      const [x, theta] = node.inputs as [Tensor, Tensor | undefined];
      return [
        await op.forward(ctx.kernels, ctx.value(x), ctx.value(node.output), x.size, {
          ...(theta ? { theta: ctx.value(theta) } : {}),
          storage: types(
            ctx.storage(x),
            ctx.storage(node.output),
            theta ? ctx.storage(theta) : "f32",
          ),
        }),
      ];
    },
    async backward(ctx, node, dy) {
      const [x, theta] = node.inputs as [Tensor, Tensor | undefined];
      const slot = ctx.grad(x);
      const thetaSlot = theta ? ctx.grad(theta) : undefined;
      if (!slot && !thetaSlot) return [];
      const storage = types(ctx.storage(x), "f32", theta ? ctx.storage(theta) : "f32");
      const dtheta = thetaSlot ? ctx.temp(x.size, `${name} dθ contributions`) : undefined;
      const out = [
        await op.backward(
          ctx.kernels,
          ctx.value(x),
          dy,
          slot ? slot.ref : ctx.temp(x.size, `${name} unused dx`),
          x.size,
          slot?.accumulate ?? false,
          { ...(theta ? { theta: ctx.value(theta), dtheta } : {}), storage },
        ),
      ];
      if (thetaSlot && theta) {
        out.push(
          await biasGrad(ctx.kernels, {
            dy: dtheta!,
            db: thetaSlot.ref,
            m: x.size / theta.size,
            n: theta.size,
            accumulate: thetaSlot.accumulate,
            label: `${name} dθ`,
          }),
        );
      }
      return out;
    },
  };
  const uniform = (kernels: KernelCache, what: string, n: number, accumulate: boolean) =>
    kernels.gpu.uniform(
      `${name} ${what} params`,
      packUniform([["u32", n], ["u32", accumulate ? 1 : 0]]),
    );
  const needTheta = (theta: BufferRef | undefined, what: string): BufferRef[] => {
    if (!param) return [];
    if (!theta) throw new RangeError(`op "${name}": ${what} needs θ (the op has a parameter)`);
    return [theta];
  };
  const op: ElementwiseOp & { [ELEMENTWISE_OP]: true } = {
    [ELEMENTWISE_OP]: true,
    name,
    kernel,
    rule,
    ...(param ? { param } : {}),
    apply(g, x, layer) {
      if (!param) return g.apply(name, [x], x.shape, {}, [], { rule });
      if (!layer) {
        throw new RangeError(
          `op "${name}" has a parameter: apply(g, x, "<layer name>") names it "<layer name>.${param.name}"`,
        );
      }
      if (x.size % param.size !== 0) {
        throw new RangeError(
          `op "${name}" (${layer}): "${x.name}" has ${x.size} values, not a multiple of its parameter's ${param.size}`,
        );
      }
      const theta = g.param(`${layer}.${param.name}`, [param.size], param.init, {
        decay: param.decay,
      });
      return g.apply(name, [x, theta], x.shape, {}, [], { rule });
    },
    forward(kernels, x, y, n, o = {}) {
      return kernels.dispatch({
        kernel,
        entry: "forward",
        storage: o.storage ?? {},
        bindings: [x, y, uniform(kernels, "forward", n, false), ...needTheta(o.theta, "forward")],
        workgroups: grid(n, 256),
        label: `${name} forward`,
      });
    },
    backward(kernels, x, dy, dx, n, accumulate, o = {}) {
      const extra = needTheta(o.theta, "backward");
      if (param && !o.dtheta) throw new RangeError(`op "${name}": backward needs dtheta`);
      return kernels.dispatch({
        kernel,
        entry: "backward",
        storage: o.storage ?? {},
        bindings: [
          x,
          dy,
          dx,
          uniform(kernels, "backward", n, accumulate),
          ...extra,
          ...(param ? [o.dtheta!] : []),
        ],
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
 * check. With `precision: "f16"` (an op defined with `f16: true`, on an adapter with
 * `shader-f16`) x and y are stored as f16: x is rounded to f16 first and the default tolerance
 * is 2e-3 (f16 keeps 11 significant bits). Throws naming the op and the worst value when an error
 * exceeds `tolerance`. An op with a parameter is checked with `checkOp`.
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
    precision?: "f32" | "f16";
  } = {},
): Promise<ElementwiseCheck> {
  if (op.param) {
    throw new RangeError(
      `op "${op.name}" has a parameter: check it with checkOp (core/train/check_op.ts), which also checks dθ`,
    );
  }
  const half = options.precision === "f16";
  if (half && !op.rule.f16) {
    throw new RangeError(`op "${op.name}" was defined without f16: true; it runs in f32 only`);
  }
  const n = options.samples ?? 1025;
  const low = options.low ?? -4;
  const high = options.high ?? 4;
  const tolerance = options.tolerance ?? (half ? 2e-3 : 1e-4);
  const h = options.h ?? 1e-5;
  let state = (options.seed ?? 12345) >>> 0;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
  const gpu = kernels.gpu;
  const type = half ? "f16" : "f32";
  const drawn = Float32Array.from({ length: n }, () => low + (high - low) * random());
  // The values the kernel sees (f16 rounds them), so the reference starts from the same x.
  const x = half ? Float32Array.from(new Float16Array(drawn)) : drawn;
  const dy = Float32Array.from({ length: n }, () => 2 * random() - 1);
  const dx0 = Float32Array.from({ length: n }, () => 2 * random() - 1);
  const storage: StorageTypes = half ? { X_T: "f16", Y_T: "f16" } : {};
  const backStorage: StorageTypes = half ? { X_T: "f16", Y_T: "f32" } : {};
  // f16 buffers padded to whole 4-byte words.
  const xb = gpu.storage(
    `${op.name} check x`,
    half ? Float16Array.from({ length: n + (n % 2) }, (_, i) => x[i] ?? 0) : x,
  );
  const yb = gpu.storage(
    `${op.name} check y`,
    half ? new Float16Array(n + (n % 2)).fill(Number.NaN) : new Float32Array(n).fill(Number.NaN),
  );
  const dyb = gpu.storage(`${op.name} check dy`, dy);
  const dxb = gpu.storage(`${op.name} check dx`, new Float32Array(n).fill(Number.NaN));
  const accb = gpu.storage(`${op.name} check dx (accumulate)`, dx0);
  try {
    submitDispatches(gpu, [
      await op.forward(kernels, xb, yb, n, { storage }),
      await op.backward(kernels, xb, dyb, dxb, n, false, { storage: backStorage }),
      await op.backward(kernels, xb, dyb, accb, n, true, { storage: backStorage }),
    ], `${op.name} check`);
    const [y, dx, acc] = [
      await gpu.readValues(yb, n, type),
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
