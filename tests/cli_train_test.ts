import assert from "node:assert";
import { join } from "node:path";
import { readSafetensors } from "../core/io/safetensors.ts";
import { runCli } from "./helpers/cli.ts";

const trainCli = (args: string[], cwd: string) => runCli("train", args, cwd);

Deno.test("deno task train: --json, --out relative to the user's directory, the four run files", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "user-" });
  const { code, stdout, stderr } = await trainCli([
    "--dataset",
    "synthetic",
    "--model",
    "mlp",
    "--widths",
    "12",
    "--epochs",
    "2",
    "--batch-size",
    "32",
    "--val-split",
    "0.25",
    "--out",
    "my-run",
    "--json",
  ], cwd);
  assert.strictEqual(code, 0, stderr);
  const summary = JSON.parse(stdout.trim().split("\n").at(-1)!);
  for (
    const key of [
      "test_accuracy",
      "val_accuracy",
      "test_loss",
      "samples_per_sec",
      "steps",
      "seconds",
      "adapter",
      "fallback_adapter",
      "out_dir",
    ]
  ) {
    assert.ok(key in summary, `--json summary has ${key}`);
  }
  assert.ok(summary.test_accuracy >= 0 && summary.test_accuracy <= 1);
  assert.ok(
    summary.val_accuracy >= 0 && summary.val_accuracy <= 1,
    "a validation split reports val_accuracy",
  );
  assert.strictEqual(summary.out_dir, join(cwd, "my-run"));
  assert.strictEqual(summary.steps, 2 * Math.floor(384 / 32));
  const files = [...Deno.readDirSync(summary.out_dir)].map((e) => e.name).sort();
  assert.deepStrictEqual(files, [
    "config.json",
    "curves.svg",
    "metrics.jsonl",
    "model.safetensors",
  ]);
  const config = JSON.parse(await Deno.readTextFile(join(summary.out_dir, "config.json")));
  assert.strictEqual(config.config.widths, "12");
  const lines = (await Deno.readTextFile(join(summary.out_dir, "metrics.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l));
  assert.strictEqual(lines.filter((l) => l.type === "epoch").length, 2);
  const { metadata } = await readSafetensors(join(summary.out_dir, "model.safetensors"));
  assert.strictEqual(JSON.parse(metadata!.config!).widths, "12");
  assert.match(await Deno.readTextFile(join(summary.out_dir, "curves.svg")), /^<svg/);
  await Deno.remove(cwd, { recursive: true });
});

Deno.test("deno task train: bad input fails with one message naming the flag or file, exit 1", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "user-" });
  const cases: [string[], RegExp][] = [
    [["--bogus-flag", "1"], /error: unknown flag --bogus-flag\nknown keys: /],
    [["--epochs", "many"], /error: --epochs must be an integer ≥ 1, got "many"/],
    [["--optimizer", "adamw2"], /Cannot find optimizer "adamw2": known are/],
    [["--config", "missing.json"], /--config .*missing\.json: cannot read it/],
    [["--dataset", "mnist", "--data", "no-such-dir", "--epochs", "1"], /no-such-dir/],
  ];
  for (const [args, pattern] of cases) {
    const { code, stderr } = await trainCli(args, cwd);
    assert.strictEqual(code, 1, `${args.join(" ")}: exit ${code}\n${stderr}`);
    assert.match(stderr, pattern, args.join(" "));
  }
  await Deno.remove(cwd, { recursive: true });
});
