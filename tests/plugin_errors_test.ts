/**
 * Plugins that are wrong stop at load with a message naming the file, the field and the fix —
 * a syntax error, a missing or mistyped field, an unknown field, a name taken (naming both
 * files), a key that reuses a trainer key's name, a kernel that does not compile — and a run
 * trained with `--plugin` resumes with the same module, refusing one that moved or changed.
 */

import assert from "node:assert";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { runCli } from "./helpers/cli.ts";

const ROOT = new URL("..", import.meta.url).pathname;

const trainCli = (args: string[], cwd: string) => runCli("train", args, cwd);

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
    ["fields.ts", /--plugin fields\.ts: model "no-build" needs field "build": a function/],
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
    assert.strictEqual(out.code, 1, `${file}: exit ${out.code}: ${out.stderr}`);
    assert.match(out.stderr, pattern, file);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("plugin fields are checked at load: missing slots, wrong types, unknown fields, keys that reuse trainer keys, duplicates naming both files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "plugin-fields-" });
  const write = (name: string, text: string) => Deno.writeTextFile(join(dir, name), text);
  const opt = (extra: string) =>
    `export default { kind: 'optimizer', name: 'o', description: '', defaults: {}, create: async () => [], ${extra} };`;
  await write("noslots.ts", opt(""));
  await write("slottypo.ts", opt("slot: ['m']"));
  await write("badslots.ts", opt("slots: 'm'"));
  await write(
    "baddefault.ts",
    "export default { kind: 'schedule', name: 's', description: '', defaults: { s_max: [1, 2] }, lr: () => 1 };",
  );
  await write(
    "trainerkey.ts",
    "export default { kind: 'schedule', name: 'seven', description: '', defaults: { epochs: 7 }, lr: () => 1 };",
  );
  await write(
    "keyspec.ts",
    "export default { kind: 'schedule', name: 'k', description: '', defaults: {}, keys: { k_max: { min: 0 } }, lr: () => 1 };",
  );
  const model = (name: string) =>
    `import { nn } from 'webgpu-trainer';\nexport default { kind: 'model', name: '${name}', description: '', defaults: {}, build: (g, x, _c, info) => nn.linear(g, x, 'head', { out: info.classes }) };`;
  await write("first.ts", model("twin"));
  await write("second.ts", model("twin"));
  const cases: [string[], RegExp][] = [
    [["noslots.ts"], /--plugin noslots\.ts: optimizer "o" needs field "slots": an array of names/],
    [
      ["slottypo.ts"],
      /--plugin slottypo\.ts: optimizer "o": unknown field "slot"; did you mean "slots"\?/,
    ],
    [
      ["badslots.ts"],
      /--plugin badslots\.ts: optimizer "o": field "slots" must be an array of names .*, got string "m"/,
    ],
    [
      ["baddefault.ts"],
      /--plugin baddefault\.ts: schedule "s": field "defaults" must be an object of defaults: a string, finite number or boolean each \("s_max" is \[1,2\]\)/,
    ],
    [
      ["keyspec.ts"],
      /--plugin keyspec\.ts: schedule "k": field "keys" describes "k_max", which is not in its "defaults"/,
    ],
    [
      ["first.ts", "second.ts"],
      /--plugin second\.ts: model "twin" is already registered \(by --plugin first\.ts\)/,
    ],
  ];
  for (const [files, pattern] of cases) {
    const out = await trainCli(
      [...files.flatMap((f) => ["--plugin", f]), "--dataset", "synthetic", "--epochs", "1"],
      dir,
    );
    assert.strictEqual(out.code, 1, `${files}: exit ${out.code}: ${out.stderr}`);
    assert.match(out.stderr, pattern, files.join(" "));
  }
  // A plugin key named like a trainer key would silently change the run: an error naming both.
  const seven = await trainCli(
    ["--plugin", "trainerkey.ts", "--schedule", "seven", "--dataset", "synthetic"],
    dir,
  );
  assert.strictEqual(seven.code, 1, seven.stderr);
  assert.match(seven.stderr, /schedule "seven".*"epochs".*trainer/s);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--resume of a --plugin run loads the module it was trained with, and refuses one that moved or changed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "plugin-resume-" });
  const code =
    "import { nn } from 'webgpu-trainer';\nexport default { kind: 'model', name: 'tiny-resume', description: '', defaults: { tiny_hidden: 16 },\n  build: (g, x, c, info) => nn.linear(g, nn.linear(g, x, 'fc', { out: Number(c.tiny_hidden), activation: 'relu' }), 'head', { out: info.classes }) };\n";
  await Deno.writeTextFile(join(dir, "tiny.ts"), code);
  const first = await trainCli([
    "--plugin",
    "tiny.ts",
    "--model",
    "tiny-resume",
    "--dataset",
    "synthetic",
    "--epochs",
    "1",
    "--out",
    "run",
  ], dir);
  assert.strictEqual(first.code, 0, first.stderr);
  const record = JSON.parse(await Deno.readTextFile(join(dir, "run", "config.json")));
  assert.strictEqual(record.plugins.length, 1);
  assert.strictEqual(record.plugins[0].path, join(dir, "tiny.ts"));
  assert.match(record.plugins[0].sha256, /^[0-9a-f]{64}$/);
  // No --plugin needed: the run knows its module.
  const resumed = await trainCli(["--resume", "run", "--epochs", "2", "--json"], dir);
  assert.strictEqual(resumed.code, 0, resumed.stderr);
  assert.strictEqual(JSON.parse(resumed.stdout.trim().split("\n").at(-1)!).status, "completed");
  // Changed: refused, saying what changed and how to go on.
  await Deno.writeTextFile(join(dir, "tiny.ts"), code + "// edited\n");
  const changed = await trainCli(["--resume", "run", "--epochs", "3"], dir);
  assert.strictEqual(changed.code, 1);
  assert.match(
    changed.stderr,
    /--plugin .*tiny\.ts changed since the run was trained \(sha256 [0-9a-f]{12}… then, [0-9a-f]{12}… now\).*restore the file, or pass --plugin/,
  );
  // Moved: refused, naming the old place and the flag that says the new one.
  await Deno.rename(join(dir, "tiny.ts"), join(dir, "moved.ts"));
  const moved = await trainCli(["--resume", "run", "--epochs", "3"], dir);
  assert.strictEqual(moved.code, 1);
  assert.match(
    moved.stderr,
    /trained with --plugin .*tiny\.ts, which is gone \(no such file\); if it moved, pass its new place: --resume .*run --plugin NEW_PATH/,
  );
  const given = await trainCli([
    "--resume",
    "run",
    "--plugin",
    "moved.ts",
    "--epochs",
    "3",
    "--json",
  ], dir);
  assert.strictEqual(given.code, 0, given.stderr);
  assert.match(
    given.stderr,
    /note: --plugin moved\.ts is not byte-for-byte a module this run was trained with/,
  );
  await Deno.remove(dir, { recursive: true });
});
