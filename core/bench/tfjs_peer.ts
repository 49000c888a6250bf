/**
 * The peer in the same process on the same adapter: TensorFlow.js's WebGPU backend, timed the
 * way our kernels are (back-to-back work, one wait at the end as a readback, median of repeats):
 * the same matmul, and the same BottleneckMLP training step (Adam, same batch, data resident on
 * the GPU).
 *
 * @module
 */

import { median } from "./timing.ts";
import type { TimedRunner } from "./budget.ts";

// deno-lint-ignore no-explicit-any
type Tf = any;

let loadedTf: Promise<Tf> | undefined;

/** TF.js with its WebGPU backend active. */
export function tfjs(): Promise<Tf> {
  loadedTf ??= (async () => {
    // The umbrella package: it registers the gradients that optimizer.minimize needs.
    const tf = await import("@tensorflow/tfjs");
    await import("@tensorflow/tfjs-backend-webgpu");
    if (!(await tf.setBackend("webgpu"))) {
      throw new Error("TF.js could not start its WebGPU backend");
    }
    await tf.ready();
    return tf;
  })();
  return loadedTf;
}

/** Products of [m,k]·[k,n] in TF.js: `run(n)` does n of them, then reads the last back. */
export async function tfjsMatmulRunner(m: number, n: number, k: number): Promise<TimedRunner> {
  const tf = await tfjs();
  const a = tf.randomNormal([m, k]);
  const b = tf.randomNormal([k, n]);
  return {
    async run(count: number) {
      const start = performance.now();
      let c = tf.matMul(a, b);
      for (let i = 1; i < count; i++) {
        c.dispose();
        c = tf.matMul(a, b);
      }
      await c.data();
      c.dispose();
      return (performance.now() - start) / 1000;
    },
    dispose() {
      a.dispose();
      b.dispose();
    },
  };
}

/** Median seconds of `repeats` runs of `count` operations, after one warm-up run. */
async function medianRuns(runner: TimedRunner, count: number, repeats: number): Promise<number> {
  try {
    await runner.run(count);
    const times: number[] = [];
    for (let r = 0; r < repeats; r++) times.push(await runner.run(count));
    return median(times);
  } finally {
    runner.dispose();
  }
}

/** GFLOP/s of `count` back-to-back A·B products of [m,k]·[k,n] (median of `repeats`). */
export async function tfjsMatmulGflops(
  m: number,
  n: number,
  k: number,
  count: number,
  repeats: number,
): Promise<number> {
  const seconds = await medianRuns(await tfjsMatmulRunner(m, n, k), count, repeats);
  return (2 * m * n * k * count) / seconds / 1e9;
}

/** The BottleneckMLP of the bench, as TF.js variables and ops. */
export interface PeerModel {
  features: number;
  classes: number;
  depth: number;
  width: number;
  expansion: number;
  batch: number;
  lr: number;
}

/**
 * Adam steps of the same BottleneckMLP in TF.js: `run(n)` does n steps, then reads a parameter
 * back.
 */
export async function tfjsTrainRunner(model: PeerModel): Promise<TimedRunner> {
  const tf = await tfjs();
  const lin = (i: number, o: number) => ({
    w: tf.variable(tf.randomUniform([i, o], -1 / Math.sqrt(i), 1 / Math.sqrt(i))),
    b: tf.variable(tf.randomUniform([o], -1 / Math.sqrt(i), 1 / Math.sqrt(i))),
  });
  const wide = model.width * model.expansion;
  const embed = lin(model.features, model.width);
  const blocks = Array.from({ length: model.depth }, () => ({
    gamma: tf.variable(tf.ones([model.width])),
    beta: tf.variable(tf.zeros([model.width])),
    fc1: lin(model.width, wide),
    fc2: lin(wide, model.width),
  }));
  const head = lin(model.width, model.classes);
  const x = tf.randomNormal([model.batch, model.features]);
  const labels = tf.oneHot(
    tf.randomUniform([model.batch], 0, model.classes, "int32"),
    model.classes,
  );
  const dense = (h: Tf, l: { w: Tf; b: Tf }) => tf.add(tf.matMul(h, l.w), l.b);
  const loss = () => {
    let h = dense(x, embed);
    for (const blk of blocks) {
      const { mean, variance } = tf.moments(h, -1, true);
      const n = tf.add(
        tf.mul(tf.mul(tf.sub(h, mean), tf.rsqrt(tf.add(variance, 1e-5))), blk.gamma),
        blk.beta,
      );
      const a = dense(n, blk.fc1);
      const gelu = tf.mul(tf.mul(a, 0.5), tf.add(tf.erf(tf.mul(a, Math.SQRT1_2)), 1));
      h = tf.add(h, dense(gelu, blk.fc2));
    }
    return tf.losses.softmaxCrossEntropy(labels, dense(h, head));
  };
  const optimizer = tf.train.adam(model.lr);
  const variables = [embed, ...blocks.flatMap((b) => [b.fc1, b.fc2]), head].flatMap((l) => [
    l.w,
    l.b,
  ]).concat(blocks.flatMap((b) => [b.gamma, b.beta]));
  return {
    async run(steps: number) {
      const start = performance.now();
      for (let s = 0; s < steps; s++) optimizer.minimize(loss, false);
      await head.b.data();
      return (performance.now() - start) / 1000;
    },
    dispose() {
      for (const v of variables) v.dispose();
      x.dispose();
      labels.dispose();
      optimizer.dispose();
    },
  };
}

/** Samples/s of `steps` back-to-back Adam steps of the same BottleneckMLP (median of `repeats`). */
export async function tfjsTrainSamplesPerSec(
  model: PeerModel,
  steps: number,
  repeats: number,
): Promise<number> {
  const seconds = await medianRuns(await tfjsTrainRunner(model), steps, repeats);
  return (steps * model.batch) / seconds;
}
