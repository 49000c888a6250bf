/**
 * The README's "Write a plugin" example, taken verbatim from README.md, saved outside the
 * repository, gradient-checked, and trained through `--plugin`.
 */

import assert from "node:assert";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { checkElementwiseOp, type ElementwiseOp } from "../core/graph/elementwise_op.ts";
import { testGpu } from "./helpers/gpu.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MAIN = join(ROOT, "main.ts");
const CONFIG = join(ROOT, "deno.json");

async function readmeSection(): Promise<{ code: string; command: string[] }> {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const section = readme.split("## Write a plugin")[1]!.split("\n## ")[0]!;
  const code = /```ts\n([\s\S]*?)```/.exec(section)![1]!;
  const command = /```sh\n(deno task train [^\n]*)\n```/.exec(section)![1]!.split(/\s+/);
  return { code, command };
}

async function savedPlugin(code: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "user-plugin-" });
  const path = join(dir, "my_plugin.ts");
  await Deno.writeTextFile(path, code);
  return path;
}

function trainCli(args: string[], cwd: string) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--config", CONFIG, MAIN, "train", ...args],
    env: { INIT_CWD: cwd },
    stdout: "piped",
    stderr: "piped",
  }).output();
}

Deno.test("README plugin: its kernel passes the gradient check against its float64 reference", async () => {
  const { kernels } = await testGpu();
  const { code } = await readmeSection();
  const path = await savedPlugin(code);
  const mod = await import(pathToFileURL(path).href) as {
    squareplus: ElementwiseOp;
    squareplusReference: (x: number) => number;
  };
  const check = await checkElementwiseOp(kernels, mod.squareplus, mod.squareplusReference, {
    low: -6,
    high: 6,
  });
  assert.ok(check.forwardError < 1e-5 && check.backwardError < 1e-4, JSON.stringify(check));
  // A wrong reference must fail the check.
  await assert.rejects(
    () => checkElementwiseOp(kernels, mod.squareplus, (x) => Math.max(x, 0)),
    /op "squareplus": forwardError .* exceeds/,
  );
  await Deno.remove(join(path, ".."), { recursive: true });
});

Deno.test("README plugin: saved outside the repository, it trains through --plugin with the README's command", async () => {
  const { code, command } = await readmeSection();
  assert.deepStrictEqual(command.slice(0, 5), [
    "deno",
    "task",
    "train",
    "--plugin",
    "/path/to/my_plugin.ts",
  ]);
  const path = await savedPlugin(code);
  const dir = join(path, "..");
  // The README's flags, on the synthetic dataset so the test stays small.
  const args = [
    ...command.slice(3).map((a) => a === "/path/to/my_plugin.ts" ? "my_plugin.ts" : a),
    "--dataset",
    "synthetic",
    "--epochs",
    "3",
    "--batch-size",
    "32",
    "--lr",
    "0.01",
    "--json",
  ];
  const out = await trainCli(args, dir);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.strictEqual(out.code, 0, stderr);
  const summary = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  assert.ok(summary.test_accuracy >= 0.9, `test accuracy ${summary.test_accuracy}`);
  assert.match(stderr + new TextDecoder().decode(out.stdout), /squareplus-mlp/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("plugin errors name the file and the problem", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bad-plugins-" });
  const write = (name: string, text: string) => Deno.writeTextFile(join(dir, name), text);
  await write("syntax.ts", "export default { kind: 'model', name: 'x' ");
  await write(
    "fields.ts",
    "export default { kind: 'model', name: 'no-build', description: '', defaults: {} };",
  );
  await write("kind.ts", "export default { kind: 'metric', name: 'x', defaults: {} };");
  await write(
    "clash.ts",
    "import { mlp } from '" + pathToFileURL(join(ROOT, "plugins/models/mlp.ts")).href +
      "';\nexport default { ...mlp };",
  );
  await write(
    "kernel.ts",
    "import { defineElementwiseOp } from 'webgpu-trainer';\nexport const broken = defineElementwiseOp('broken', 'fn forward( {');\nexport default [];",
  );
  // Not exported: compiled when a model uses it; the error still names the plugin file.
  await write(
    "hidden-kernel.ts",
    "import { defineElementwiseOp, nn } from 'webgpu-trainer';\n" +
      "const hidden = defineElementwiseOp('hidden', 'fn forward( {');\n" +
      "export default { kind: 'model', name: 'uses-hidden', description: '', defaults: {},\n" +
      "  build: (g, x, _c, info) => nn.linear(g, hidden.apply(g, x), 'head', { out: info.classes }) };",
  );
  await write("nodefault.ts", "export const x = 1;");
  const cases: [string, RegExp][] = [
    ["syntax.ts", /--plugin syntax\.ts: cannot load .*syntax\.ts/],
    ["fields.ts", /--plugin fields\.ts: model "no-build" needs a function "build"/],
    [
      "kind.ts",
      /--plugin kind\.ts: field "kind" is "metric"; known are "model", "optimizer", "schedule", "dataset", "sampler", "loss"/,
    ],
    ["clash.ts", /--plugin clash\.ts: model "mlp" is already registered/],
    ["kernel.ts", /--plugin kernel\.ts: kernel "broken" failed to compile:[\s\S]*expected/],
    [
      "hidden-kernel.ts",
      /--plugin hidden-kernel\.ts: model "uses-hidden": kernel "hidden" failed to compile:[\s\S]*expected/,
    ],
    ["nodefault.ts", /--plugin nodefault\.ts: .*has no default export/],
  ];
  for (const [file, pattern] of cases) {
    const model = file === "hidden-kernel.ts" ? ["--model", "uses-hidden"] : [];
    const out = await trainCli(
      ["--plugin", file, ...model, "--dataset", "synthetic", "--epochs", "1"],
      dir,
    );
    const stderr = new TextDecoder().decode(out.stderr);
    assert.strictEqual(out.code, 1, `${file}: exit ${out.code}: ${stderr}`);
    assert.match(stderr, pattern, file);
  }
  await Deno.remove(dir, { recursive: true });
});
