import assert from "node:assert";
import { join } from "node:path";

const DENORT = Deno.env.get("DENORT_BIN");
const ROOT = new URL("..", import.meta.url).pathname;

Deno.test({
  name: "deno task compile: the single binary trains, and says clearly what it cannot load " +
    "(ignored unless DENORT_BIN points to a denort runtime: deno compile downloads one, and this machine cannot)",
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
