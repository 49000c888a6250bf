/**
 * A slow float64 interpreter of a {@link Graph}: it defines what each built-in op means (tinygrad's
 * habit), and gives the loss — every term with its weight, `weight · mean(term)` — of any model
 * built from them, so whole-model gradients can be checked against central finite differences of
 * it. Dropout is the identity (the checks use models without it or with p = 0); drop_path
 * multiplies each row by the scale it is given (the mask the GPU drew), or is the identity.
 */

import type { Graph, Node, Tensor } from "../../core/graph/graph.ts";
import type { Activation } from "../../core/ops/activation_ids.ts";
import { activationForwardRef } from "./activation.ts";
import { dropPathRef } from "./drop_path.ts";

/** Values of the graph's parameters (by name) and inputs, and the batch's labels. */
export interface InterpreterInputs {
  params: Map<string, Float64Array>;
  input: Float64Array;
  labels: ArrayLike<number>;
  /** Per-row scales of drop_path nodes, by node id (tests/reference/drop_path.ts); else identity. */
  dropPathScales?: Map<number, ArrayLike<number>>;
}

function prod(xs: readonly number[]): number {
  return xs.reduce((p, v) => p * v, 1);
}

function rowsCols(t: Tensor): [number, number] {
  const cols = t.shape.length === 1 ? 1 : t.shape[t.shape.length - 1]!;
  return [t.size / cols, cols];
}

/** Every tensor's value after a forward pass. */
export function interpret(graph: Graph, inputs: InterpreterInputs): Map<Tensor, Float64Array> {
  const v = new Map<Tensor, Float64Array>();
  v.set(graph.inputs[0]!, inputs.input);
  for (const p of graph.params) {
    const value = inputs.params.get(p.name);
    if (!value || value.length !== p.size) {
      throw new Error(`no value of size ${p.size} for ${p.name}`);
    }
    v.set(p.tensor, value);
  }
  const get = (t: Tensor) => {
    const x = v.get(t);
    if (!x) throw new Error(`no value for ${t.name}`);
    return x;
  };
  for (const node of graph.nodes) {
    const scales = node.op === "drop_path" ? inputs.dropPathScales?.get(node.id) : undefined;
    v.set(
      node.output,
      scales ? dropPathRef(get(node.inputs[0]!), scales) : forward(node, get, inputs.labels),
    );
  }
  return v;
}

/** The loss: Σ over terms of weight · mean(term). */
export function interpretLoss(graph: Graph, inputs: InterpreterInputs): number {
  const v = interpret(graph, inputs);
  return graph.losses.reduce((sum, l) => {
    const t = v.get(l.tensor)!;
    return sum + l.weight * t.reduce((s, x) => s + x, 0) / t.length;
  }, 0);
}

function forward(
  node: Node,
  get: (t: Tensor) => Float64Array,
  labels: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(node.output.size);
  const a = node.attrs;
  switch (node.op) {
    case "linear": {
      const [x, w, b] = node.inputs as [Tensor, Tensor, Tensor | undefined];
      const [rows, k] = rowsCols(x);
      const n = w.shape[0]!;
      const xv = get(x), wv = get(w), bv = b ? get(b) : undefined;
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < n; j++) {
          let s = bv ? bv[j]! : 0;
          for (let i = 0; i < k; i++) s += xv[r * k + i]! * wv[j * k + i]!;
          out[r * n + j] = s;
        }
      }
      return activationForwardRef(a.activation as Activation, out);
    }
    case "matmul": {
      const [x, y] = node.inputs as [Tensor, Tensor];
      const { m, n, k, batch, shared } = a as {
        m: number;
        n: number;
        k: number;
        batch: number;
        shared: boolean;
      };
      const xv = get(x), yv = get(y);
      for (let z = 0; z < batch; z++) {
        const bo = shared ? 0 : z * k * n;
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let q = 0; q < k; q++) s += xv[z * m * k + i * k + q]! * yv[bo + q * n + j]!;
            out[z * m * n + i * n + j] = s;
          }
        }
      }
      return out;
    }
    case "layernorm": {
      const [x, g, b] = node.inputs as [Tensor, Tensor, Tensor];
      const [rows, c] = rowsCols(x);
      const xv = get(x), gv = get(g), bv = get(b);
      for (let r = 0; r < rows; r++) {
        const row = xv.subarray(r * c, (r + 1) * c);
        const mean = row.reduce((s, t) => s + t, 0) / c;
        const variance = row.reduce((s, t) => s + (t - mean) ** 2, 0) / c;
        const rstd = 1 / Math.sqrt(variance + (a.eps as number));
        for (let j = 0; j < c; j++) out[r * c + j] = (row[j]! - mean) * rstd * gv[j]! + bv[j]!;
      }
      return out;
    }
    case "activation":
      return activationForwardRef(a.activation as Activation, get(node.inputs[0]!));
    case "add": {
      const [x, y] = node.inputs.map(get) as [Float64Array, Float64Array];
      return out.map((_, i) => x[i]! + y[i]!);
    }
    case "add_broadcast": {
      const [x, y] = node.inputs.map(get) as [Float64Array, Float64Array];
      return out.map((_, i) => x[i]! + y[i % y.length]!);
    }
    case "dropout":
    case "drop_path":
    case "reshape":
      return Float64Array.from(get(node.inputs[0]!));
    case "transpose": {
      const x = node.inputs[0]!;
      const [i, j] = a.axes as [number, number];
      const s = x.shape;
      const dims = {
        o: prod(s.slice(0, i)),
        A: s[i]!,
        mid: prod(s.slice(i + 1, j)),
        B: s[j]!,
        inner: prod(s.slice(j + 1)),
      };
      const xv = get(x);
      for (let o = 0; o < dims.o; o++) {
        for (let p = 0; p < dims.A; p++) {
          for (let m = 0; m < dims.mid; m++) {
            for (let q = 0; q < dims.B; q++) {
              for (let t = 0; t < dims.inner; t++) {
                const from = (((o * dims.A + p) * dims.mid + m) * dims.B + q) * dims.inner + t;
                const to = (((o * dims.B + q) * dims.mid + m) * dims.A + p) * dims.inner + t;
                out[to] = xv[from]!;
              }
            }
          }
        }
      }
      return out;
    }
    case "mean": {
      const x = node.inputs[0]!;
      const axis = a.axis as number;
      const outer = prod(x.shape.slice(0, axis));
      const len = x.shape[axis]!;
      const inner = prod(x.shape.slice(axis + 1));
      const xv = get(x);
      for (let o = 0; o < outer; o++) {
        for (let t = 0; t < inner; t++) {
          let s = 0;
          for (let p = 0; p < len; p++) s += xv[(o * len + p) * inner + t]!;
          out[o * inner + t] = a.sum ? s : s / len;
        }
      }
      return out;
    }
    case "concat": {
      const [rows, width] = rowsCols(node.output);
      let offset = 0;
      for (const x of node.inputs) {
        const w = rowsCols(x)[1];
        const xv = get(x);
        for (let r = 0; r < rows; r++) {
          for (let j = 0; j < w; j++) out[r * width + offset + j] = xv[r * w + j]!;
        }
        offset += w;
      }
      return out;
    }
    case "slice": {
      const x = node.inputs[0]!;
      const [rows, cols] = rowsCols(x);
      const { start, length } = a as { start: number; length: number };
      const xv = get(x);
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < length; j++) out[r * length + j] = xv[r * cols + start + j]!;
      }
      return out;
    }
    case "softmax_cross_entropy": {
      const { rows, classes, smoothing } = a as {
        rows: number;
        classes: number;
        smoothing: number;
      };
      const z = get(node.inputs[0]!);
      for (let r = 0; r < rows; r++) {
        const row = z.subarray(r * classes, (r + 1) * classes);
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((s, t) => s + Math.exp(t - max), 0));
        let l = 0;
        for (let k = 0; k < classes; k++) {
          const q = (1 - smoothing) * (k === labels[r] ? 1 : 0) + smoothing / classes;
          l -= q * (row[k]! - lse);
        }
        out[r] = l;
      }
      return out;
    }
    case "bce": {
      const z = get(node.inputs[0]!);
      return out.map((_, r) => {
        const t = labels[r]!;
        return Math.max(z[r]!, 0) - z[r]! * t + Math.log1p(Math.exp(-Math.abs(z[r]!)));
      });
    }
    case "mse": {
      const { rows, classes } = a as { rows: number; classes: number };
      const p = get(node.inputs[0]!);
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let k = 0; k < classes; k++) {
          s += (p[r * classes + k]! - (k === labels[r] ? 1 : 0)) ** 2;
        }
        out[r] = s / classes;
      }
      return out;
    }
    default:
      throw new Error(`the interpreter has no definition of op "${node.op}"`);
  }
}

/**
 * Central differences of the interpreted loss in float64 with respect to every parameter and
 * the input: h = 1e-6 keeps truncation (~h²·|L'''|) and rounding (~1e-16·|L|/h) below 1e-8.
 */
export function numericGradients(
  graph: Graph,
  inputs: InterpreterInputs,
  h = 1e-6,
): { params: Map<string, Float64Array>; input: Float64Array } {
  const loss = () => interpretLoss(graph, inputs);
  const diff = (values: Float64Array) => {
    const g = new Float64Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const keep = values[i]!;
      values[i] = keep + h;
      const up = loss();
      values[i] = keep - h;
      const down = loss();
      values[i] = keep;
      g[i] = (up - down) / (2 * h);
    }
    return g;
  };
  const params = new Map<string, Float64Array>();
  for (const p of graph.params) params.set(p.name, diff(inputs.params.get(p.name)!));
  return { params, input: diff(inputs.input) };
}
