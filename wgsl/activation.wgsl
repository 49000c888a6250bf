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
      return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 0.134145 * x * x);
    }
    case 4u: {
      return SELU_SCALE * select(SELU_ALPHA * exp(min(x, 0.0)), 1.0, x > 0.0);
    }
    case 5u: {
      let t = act_tanh(x);
      return 1.0 - t * t;
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
