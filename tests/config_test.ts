import assert from "node:assert";
import { builtinRegistry } from "../plugins/mod.ts";
import { keyOf, PRESETS, resolveConfig } from "../core/train/config.ts";
import { parseFlags, userPath } from "../core/cli/args.ts";
import { parseArch } from "../plugins/models/bottleneck_mlp.ts";

Deno.test("config: layers merge over trainer, preset and plugin defaults; arch sets depth, width, expansion", () => {
  const registry = builtinRegistry();
  const config = resolveConfig(registry, [
    { source: "preset", values: { preset: "scaling-mlps" } },
    { source: "--config run.json", values: { arch: "B_6-Wi_512", lr: 1e-4 } },
    { source: "flags", values: { beta2: 0.98 } },
  ]);
  assert.strictEqual(config.optimizer, PRESETS["scaling-mlps"]!.optimizer);
  assert.strictEqual(config.label_smoothing, 0.3);
  assert.strictEqual(config.lr, 1e-4);
  assert.deepStrictEqual([config.depth, config.width, config.expansion], [6, 512, 4]);
  assert.strictEqual(config.beta2, 0.98, "a key of the selected optimizer (lion)");
  assert.deepStrictEqual(parseArch("B_12-Wi_1024-X_2"), { depth: 12, width: 1024, expansion: 2 });
  assert.throws(() => parseArch("B12"), /arch must look like "B_12-Wi_1024"/);
});

Deno.test("config: an unknown key names its source and lists the known keys; unknown plugins list the known ones", () => {
  const registry = builtinRegistry();
  assert.throws(
    () => resolveConfig(registry, [{ source: "--config run.json", values: { batchsize: 3 } }]),
    (e: Error) =>
      /^--config run\.json: unknown key "batchsize"; did you mean "batch_size"\?\nknown keys: .*batch_size/
        .test(e.message),
  );
  assert.throws(
    () => resolveConfig(registry, [{ source: "flags", values: { optimizer: "adamw2" } }]),
    /Cannot find optimizer "adamw2": known are "adam", "adamw", "lamb", "lion", "noisy-adam", "sam", "sgd", "ssam"/,
  );
  assert.throws(
    () => resolveConfig(registry, [{ source: "flags", values: { preset: "fast" } }]),
    /Cannot find preset "fast"/,
  );
});

Deno.test("command line: flags map to snake_case keys, values take the default's type, paths resolve against INIT_CWD", () => {
  assert.strictEqual(keyOf("--batch-size"), "batch_size");
  const parsed = parseFlags([
    "--batch-size",
    "64",
    "--lr=0.5",
    "--json",
    "--plugin",
    "a.ts",
    "--plugin",
    "b.ts",
  ], new Set(["json"]));
  assert.deepStrictEqual(parsed.values.get("batch_size"), ["64"]);
  assert.deepStrictEqual(parsed.values.get("plugin"), ["a.ts", "b.ts"]);
  assert.ok(parsed.booleans.has("json"));
  assert.throws(() => parseFlags(["--epochs"], new Set()), /flag --epochs needs a value/);
  const typed = resolveConfig(builtinRegistry(), [
    {
      source: "flags",
      values: { batch_size: "64", arch: "B_2-Wi_64", nesterov: "true", optimizer: "sgd" },
    },
  ]);
  assert.deepStrictEqual([typed.batch_size, typed.arch, typed.nesterov], [64, "B_2-Wi_64", true]);
  assert.throws(
    () => resolveConfig(builtinRegistry(), [{ source: "flags", values: { batch_size: "many" } }]),
    /RangeError: --batch-size must be an integer ≥ 1, got "many"$/,
  );
  const saved = Deno.env.get("INIT_CWD");
  try {
    Deno.env.set("INIT_CWD", "/home/someone/project");
    assert.strictEqual(userPath("runs/a"), "/home/someone/project/runs/a");
    assert.strictEqual(userPath("/abs/x"), "/abs/x");
    assert.strictEqual(userPath("https://example.org/p.ts"), "https://example.org/p.ts");
  } finally {
    if (saved === undefined) Deno.env.delete("INIT_CWD");
    else Deno.env.set("INIT_CWD", saved);
  }
});

Deno.test("config: a later layer's width wins over an earlier layer's arch; arch with width in one layer keeps width", () => {
  const registry = builtinRegistry();
  const later = resolveConfig(registry, [
    { source: "preset", values: { preset: "mnist-cpu" } },
    { source: "trial 3", values: { width: 96 } },
  ]);
  assert.deepStrictEqual([later.depth, later.width], [2, 96]);
  const same = resolveConfig(registry, [{
    source: "resume config.json",
    values: { model: "bottleneck-mlp", arch: "B_2-Wi_64", width: 80 },
  }]);
  assert.strictEqual(same.width, 80);
  const flag = resolveConfig(registry, [{ source: "flags", values: { arch: "B_3-Wi_32" } }]);
  assert.deepStrictEqual([flag.depth, flag.width, flag.expansion], [3, 32, 4]);
});

Deno.test("config: every key has a type and range, checked where the value came from", () => {
  const registry = builtinRegistry();
  const bad = (values: Record<string, unknown>, source: string, pattern: RegExp) =>
    assert.throws(() => resolveConfig(registry, [{ source, values }]), pattern);
  bad({ lr: "-1" }, "flags", /RangeError: --lr must be a number > 0, got "-1"$/);
  bad(
    { warmup_steps: -1 },
    "--config run.json",
    /RangeError: --config run\.json: key "warmup_steps" must be an integer ≥ 0, got -1$/,
  );
  bad({ optimizer: "adam", eps: 0 }, "flags", /RangeError: --eps must be a number > 0, got 0$/);
  bad(
    { epochs: 2.5 },
    "trial 4",
    /RangeError: trial 4: key "epochs" must be an integer ≥ 1, got 2\.5$/,
  );
  bad(
    { precision: "f8" },
    "flags",
    /RangeError: --precision must be one of "f32", "f16", got "f8"$/,
  );
  bad(
    { model: "mlp", dropout: 1 },
    "flags",
    /RangeError: --dropout must be a number in \[0, 1\), got 1$/,
  );
  bad({ label_smoothing: 1.5 }, "flags", /--label-smoothing must be a number in \[0, 1\]/);
  // A preset's values are checked too, and a valid run passes.
  const ok = resolveConfig(registry, [{ source: "flags", values: { lr: "0.01", epochs: "2" } }]);
  assert.deepStrictEqual([ok.lr, ok.epochs], [0.01, 2]);
});

Deno.test("config: an unknown flag gets the closest known ones first; a key of an unselected plugin names it", () => {
  const registry = builtinRegistry();
  assert.throws(
    () => resolveConfig(registry, [{ source: "flags", values: { batchsize: "3" } }]),
    /RangeError: unknown flag --batchsize; did you mean --batch-size\?\n/,
  );
  assert.throws(
    () =>
      resolveConfig(registry, [{
        source: "flags",
        values: { optimizer: "adam", momentum: "0.5" },
      }]),
    (e: Error) =>
      /^unknown flag --momentum\b/.test(e.message) &&
      /--momentum is a key of optimizer "sgd", which this run does not select/.test(e.message),
  );
  assert.throws(
    () =>
      resolveConfig(registry, [{
        source: "--config c.json",
        values: { synthetic_nosie: 3, dataset: "synthetic" },
      }]),
    /RangeError: --config c\.json: unknown key "synthetic_nosie"; did you mean "synthetic_noise"( or [^?]+)?\?/,
  );
});

Deno.test("config: a plugin key that reuses a trainer key's name is an error naming both", () => {
  const registry = builtinRegistry();
  registry.register({
    kind: "schedule",
    name: "sneaky",
    description: "",
    defaults: { epochs: 7 },
    lr: () => 0.1,
  }, "--plugin sneaky.ts");
  assert.throws(
    () => resolveConfig(registry, [{ source: "flags", values: { schedule: "sneaky" } }]),
    /RangeError: --plugin sneaky\.ts: schedule "sneaky" declares the key "epochs", which is the trainer's own/,
  );
});
