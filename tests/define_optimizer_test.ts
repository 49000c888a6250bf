/**
 * defineOptimizer: Adam, AdamW and LION re-expressed through it, each held by checkOptimizer
 * against a float64 function of the same rule over 20 steps (three segments with their own lr
 * multipliers and weight decays, fresh gradients every step); AdaBelief in ~20 lines; and the
 * errors a definition can make.
 */

import { ok, rejects, throws } from "node:assert";
import { checkOptimizer, type ReferenceElement } from "../core/train/check_optimizer.ts";
import { defineOptimizer } from "../core/train/define_optimizer.ts";
import { adamPlugin, adamwPlugin, lionPlugin } from "../plugins/optimizers/optimizers.ts";
import { testGpu } from "./helpers/gpu.ts";

/** torch.optim.Adam / AdamW in float64. */
function adamRef(decoupled: boolean) {
  return (e: ReferenceElement) => {
    const { beta1, beta2, eps } = e.hyper as { beta1: number; beta2: number; eps: number };
    let p = e.p;
    let g = e.g;
    if (decoupled) p *= 1 - e.lr * e.wd;
    else g += e.wd * p;
    const m = beta1 * e.state.exp_avg! + (1 - beta1) * g;
    const v = beta2 * e.state.exp_avg_sq! + (1 - beta2) * g * g;
    const denom = Math.sqrt(v) / Math.sqrt(1 - beta2 ** e.t) + eps;
    return { p: p - e.lr * (m / (1 - beta1 ** e.t)) / denom, state: { exp_avg: m, exp_avg_sq: v } };
  };
}

function lionRef(e: ReferenceElement) {
  const { beta1, beta2 } = e.hyper as { beta1: number; beta2: number };
  const p = e.p * (1 - e.lr * e.wd);
  const c = beta1 * e.state.exp_avg! + (1 - beta1) * e.g;
  return {
    p: p - e.lr * Math.sign(c),
    state: { exp_avg: beta2 * e.state.exp_avg! + (1 - beta2) * e.g },
  };
}

Deno.test("defineOptimizer: Adam and AdamW through it match float64 over 20 steps", async () => {
  const { kernels } = await testGpu();
  await checkOptimizer(kernels, adamPlugin, adamRef(false));
  await checkOptimizer(kernels, adamwPlugin, adamRef(true), { config: { beta1: 0.8, eps: 1e-6 } });
});

Deno.test("defineOptimizer: LION through it matches float64 over 20 steps", async () => {
  const { kernels } = await testGpu();
  // Sign updates: a reference within rounding of a sign flip would differ by 2·lr; the seeded
  // inputs keep every |c| far from 0.
  await checkOptimizer(kernels, lionPlugin, lionRef);
});

/** The README's AdaBelief, as a user writes it. */
export const adabelief = defineOptimizer({
  name: "adabelief",
  description: "AdaBelief: Adam with the variance of the gradient around its mean",
  slots: ["exp_avg", "exp_avg_var"],
  hyper: {
    beta1: { default: 0.9, min: 0, max: 1, maxExclusive: true },
    beta2: { default: 0.999, min: 0, max: 1, maxExclusive: true },
    eps: { default: 1e-16, min: 0, minExclusive: true },
  },
  update: `
    exp_avg = hyper.beta1 * exp_avg + hyper.one_minus_beta1 * g;
    let d = g - exp_avg;
    exp_avg_var = hyper.beta2 * exp_avg_var + hyper.one_minus_beta2 * d * d + hyper.eps;
    let v_hat = exp_avg_var / one_minus_pow(hyper.log_beta2, t);
    p = p - lr * (exp_avg / one_minus_pow(hyper.log_beta1, t)) / (sqrt(v_hat) + hyper.eps);`,
});

Deno.test("defineOptimizer: AdaBelief in a few lines, checked against its float64 rule", async () => {
  const { kernels } = await testGpu();
  const check = await checkOptimizer(kernels, adabelief, (e) => {
    const { beta1, beta2, eps } = e.hyper as { beta1: number; beta2: number; eps: number };
    const p = e.p * (1 - e.lr * e.wd);
    const m = beta1 * e.state.exp_avg! + (1 - beta1) * e.g;
    const s = beta2 * e.state.exp_avg_var! + (1 - beta2) * (e.g - m) ** 2 + eps;
    const vHat = s / (1 - beta2 ** e.t);
    return {
      p: p - e.lr * (m / (1 - beta1 ** e.t)) / (Math.sqrt(vHat) + eps),
      state: { exp_avg: m, exp_avg_var: s },
    };
  });
  ok(check.maxError < 1e-4, `max error ${check.maxError}`);
  // And a wrong reference fails: the check can fail.
  await rejects(
    checkOptimizer(kernels, adabelief, (e) => ({ p: e.p - e.lr * e.g, state: e.state })),
    /optimizer "adabelief": after 20 steps params\[\d+\] is .*\(relative error/,
  );
});

Deno.test("defineOptimizer: bad definitions are errors naming the optimizer", () => {
  throws(
    () => defineOptimizer({ name: "x", description: "", slots: ["p"], update: "" }),
    /optimizer "x": "p" cannot be a slot or hyperparameter name/,
  );
  throws(
    () =>
      defineOptimizer({
        name: "y",
        description: "",
        slots: [],
        hyper: { lr2: { default: NaN } },
        update: "",
      }),
    /optimizer "y": hyperparameter "lr2" needs a finite number default/,
  );
  throws(
    () =>
      defineOptimizer({
        name: "z",
        description: "",
        slots: [],
        update: "",
        weightDecay: "l3" as unknown as "none",
      }),
    /weightDecay must be "decoupled", "coupled" or "none"/,
  );
});
