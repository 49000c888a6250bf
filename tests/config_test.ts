import assert from "node:assert";
import { builtinRegistry } from "../plugins/mod.ts";
import { keyOf, PRESETS, resolveConfig } from "../core/train/config.ts";
import { coerce, parseFlags, userPath } from "../core/cli/args.ts";
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
      /--config run\.json: unknown key "batchsize"; known are .*batch_size/.test(e.message),
  );
  assert.throws(
    () => resolveConfig(registry, [{ source: "flags", values: { optimizer: "adamw2" } }]),
    /Cannot find optimizer "adamw2": known are "adam", "adamw", "lamb", "lion", "sgd"/,
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
  assert.strictEqual(coerce("batch_size", "64", { batch_size: 1 }), 64);
  assert.throws(
    () => coerce("batch_size", "many", { batch_size: 1 }),
    /--batch-size needs a number, got "many"/,
  );
  assert.strictEqual(coerce("arch", "B_2-Wi_64", { arch: "" }), "B_2-Wi_64");
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
