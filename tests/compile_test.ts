import assert from "node:assert";
import { join } from "node:path";

const DENORT = Deno.env.get("DENORT_BIN");
const ROOT = new URL("..", import.meta.url).pathname;

/** Runs `main.ts compile` with `env`. */
async function compile(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--config",
      join(ROOT, "deno.json"),
      join(ROOT, "main.ts"),
      "compile",
      ...args,
    ],
    env,
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("deno task compile: a DENORT_BIN that names no file is an error naming it, before deno compile runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compile-" });
  const r = await compile(["--output", join(dir, "bin")], {
    DENORT_BIN: join(dir, "missing-denort"),
  });
  assert.strictEqual(r.code, 1);
  assert.match(
    r.stderr,
    /DENORT_BIN=.*missing-denort: no such file; point it at a denort binary of Deno \d/,
  );
  assert.ok(
    !(await Deno.stat(join(dir, "bin")).then(() => true, () => false)),
    "no binary written",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task compile: every built-in plugin and dataset module is in main.ts's static module graph, so deno compile embeds it", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", join(ROOT, "deno.json"), join(ROOT, "main.ts")],
    stdout: "piped",
  }).output();
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  const inGraph = new Set(graph.modules.map((m) => m.specifier));
  const expect: string[] = [];
  for (const folder of ["plugins", "datasets"]) {
    const walk = (dir: string) => {
      for (const e of Deno.readDirSync(dir)) {
        const path = join(dir, e.name);
        if (e.isDirectory) walk(path);
        else if (e.name.endsWith(".ts")) expect.push(`file://${path}`);
      }
    };
    walk(join(ROOT, folder));
  }
  const missing = expect.filter((m) => !inGraph.has(m));
  assert.deepStrictEqual(missing, [], "modules deno compile would not embed");
  assert.ok(expect.length >= 8, `${expect.length} modules checked`);
  // And the kernels those modules load with them.
  assert.ok(graph.modules.some((m) => m.specifier.endsWith("/wgsl/matmul.wgsl")), "matmul.wgsl");
});

// Building needs the denort runtime: DENORT_BIN (set by CI where one is available) or a download,
// which this project's machines cannot make — so the build itself runs only with DENORT_BIN.
Deno.test({
  name: "deno task compile: the single binary trains, and says clearly what it cannot load " +
    "(needs DENORT_BIN: deno compile downloads denort otherwise, and this machine cannot)",
  ignore: !DENORT,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "compile-" });
    const binary = join(dir, "webgpu-trainer");
    const built = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--config",
        join(ROOT, "deno.json"),
        join(ROOT, "main.ts"),
        "compile",
        "--output",
        binary,
      ],
      stderr: "piped",
    }).output();
    assert.strictEqual(built.code, 0, new TextDecoder().decode(built.stderr));
    const run = async (args: string[]) => {
      const out = await new Deno.Command(binary, {
        args,
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      return {
        code: out.code,
        stdout: new TextDecoder().decode(out.stdout),
        stderr: new TextDecoder().decode(out.stderr),
      };
    };
    const trained = await run([
      "train",
      "--dataset",
      "synthetic",
      "--model",
      "mlp",
      "--epochs",
      "1",
      "--json",
    ]);
    assert.strictEqual(trained.code, 0, trained.stderr);
    assert.ok(JSON.parse(trained.stdout.trim().split("\n").at(-1)!).test_accuracy > 0.5);
    await Deno.writeTextFile(join(dir, "p.ts"), "export default [];");
    const plugin = await run([
      "train",
      "--plugin",
      "p.ts",
      "--dataset",
      "synthetic",
      "--epochs",
      "1",
    ]);
    assert.ok(
      plugin.code === 0 ||
        /compiled binary cannot load .*deno task compile --include/.test(plugin.stderr),
      plugin.stderr,
    );
    const mnist = await run(["train", "--data", join(dir, "none"), "--epochs", "1"]);
    assert.strictEqual(mnist.code, 1);
    assert.match(mnist.stderr, /none/);
    await Deno.remove(dir, { recursive: true });
  },
});
