// Activations and their derivatives, elementwise. The functions above the entry-points marker are
// a library: matmul's epilogue pulls them in with `//!include activation`.
//
// Activation ids (ACT override / `act` argument), the same in core/ops/activation.ts:
//   0 identity, 1 relu, 2 gelu (exact, erf form), 3 gelu_tanh, 4 selu, 5 tanh, 6 sigmoid, 7 silu
// act_forward(x, id) = f(x); act_derivative(x, id) = f'(x), both from the pre-activation x.
// Formulas: shared/specs/algorithms.md §9.3 (GELU), SELU constants from Klambauer et al. 2017.

const ACT_IDENTITY: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_GELU: u32 = 2u;
const ACT_GELU_TANH: u32 = 3u;
const ACT_SELU: u32 = 4u;
const ACT_TANH: u32 = 5u;
const ACT_SIGMOID: u32 = 6u;
const ACT_SILU: u32 = 7u;

const SELU_ALPHA: f32 = 1.6732632423543772;
const SELU_SCALE: f32 = 1.0507009873554805;
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const INV_SQRT_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

// erf by Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7); WGSL has no erf builtin.
fn act_erf(x: f32) -> f32 {
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 +
    t * 1.061405429))));
  let y = 1.0 - poly * exp(-a * a);
  return select(-y, y, x >= 0.0);
}

// tanh with its argument clamped: some backends overflow exp for |u| ≳ 44.
fn act_tanh(u: f32) -> f32 {
  return tanh(clamp(u, -15.0, 15.0));
}

// sech²(u) = 1 − tanh²(u), computed as 4e/(1 + e)² with e = exp(−2|u|): the form 1 − t·t loses
// all relative accuracy where t rounds to ±1 (|u| ≳ 3 leaves ~1e-7 absolute error, amplified by
// GELU-tanh's x·(1 + 0.134145x²) factor), while this never overflows and only underflows to 0.
fn act_sech2(u: f32) -> f32 {
  let e = exp(-2.0 * abs(u));
  let d = 1.0 + e;
  return 4.0 * e / (d * d);
}

// Logistic sigmoid without overflow for large |x|.
fn act_sigmoid(x: f32) -> f32 {
  if (x >= 0.0) {
    return 1.0 / (1.0 + exp(-x));
  }
  let e = exp(x);
  return e / (1.0 + e);
}

fn act_forward(x: f32, id: u32) -> f32 {
  switch id {
    case 1u: {
      return max(x, 0.0);
    }
    case 2u: {
      return 0.5 * x * (1.0 + act_erf(x * INV_SQRT_2));
    }
    case 3u: {
      let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
      return 0.5 * x * (1.0 + act_tanh(u));
    }
    case 4u: {
      return SELU_SCALE * select(SELU_ALPHA * (exp(min(x, 0.0)) - 1.0), x, x > 0.0);
    }
    case 5u: {
      return act_tanh(x);
    }
    case 6u: {
      return act_sigmoid(x);
    }
    case 7u: {
      return x * act_sigmoid(x);
    }
    default: {
      return x;
    }
  }
}

fn act_derivative(x: f32, id: u32) -> f32 {
  switch id {
    case 1u: {
      return select(0.0, 1.0, x > 0.0);
    }
    case 2u: {
      let cdf = 0.5 * (1.0 + act_erf(x * INV_SQRT_2));
      return cdf + x * INV_SQRT_2PI * exp(-0.5 * x * x);
    }
    case 3u: {
      let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
      let t = act_tanh(u);
      return 0.5 * (1.0 + t) + 0.5 * x * act_sech2(u) * SQRT_2_OVER_PI * (1.0 + 0.134145 * x * x);
    }
    case 4u: {
      return SELU_SCALE * select(SELU_ALPHA * exp(min(x, 0.0)), 1.0, x > 0.0);
    }
    case 5u: {
      return act_sech2(x);
    }
    case 6u: {
      let s = act_sigmoid(x);
      return s * (1.0 - s);
    }
    case 7u: {
      let s = act_sigmoid(x);
      return s * (1.0 + x * (1.0 - s));
    }
    default: {
      return 1.0;
    }
  }
}

//!entry-points
// Entry points (only when this file is compiled as the kernel "activation"; included copies stop at
// the marker above). Overrides: ACT = activation id (table at the top); ACCUMULATE (backward only).
//   forward:  bindings 0 x: array<X_T> (n) pre-activation, 1 y: array<X_T> (n) = f(x),
//             2 params {n}
//   backward: bindings 0 x: array<X_T> (n) saved pre-activation, 1 dy: array<f32> (n),
//             2 dx: array<f32> (n) = dy·f'(x), or += with ACCUMULATE, 3 params {n}
// X_T, the values' storage type, is f32 or f16 (core/kernels.ts withStorage); gradients are f32.
// Buffers of one dispatch must not alias (WebGPU forbids a writable binding overlapping another).
// Dispatch: ceil(n / 256) workgroups of 256, split over x and y above 65535 (core/kernels.ts grid).

override ACT: u32;
override ACCUMULATE: bool = false;

alias X_T = f32;

struct ActivationParams {
  n: u32,
}

@group(0) @binding(0) var<storage, read> act_x: array<X_T>;
@group(0) @binding(1) var<storage, read_write> act_y: array<X_T>;
@group(0) @binding(2) var<uniform> forward_params: ActivationParams;

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < forward_params.n) {
    act_y[i] = X_T(act_forward(f32(act_x[i]), ACT));
  }
}

@group(0) @binding(1) var<storage, read> act_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> act_dx: array<f32>;
@group(0) @binding(3) var<uniform> backward_params: ActivationParams;

@compute @workgroup_size(256)
fn backward(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < backward_params.n) {
    let g = act_dy[i] * act_derivative(f32(act_x[i]), ACT);
    if (ACCUMULATE) {
      act_dx[i] = act_dx[i] + g;
    } else {
      act_dx[i] = g;
    }
  }
}
