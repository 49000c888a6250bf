/**
 * Setting up what the commands need: missing requirements are installed with apt-get on Debian
 * as root (saying what and why), and elsewhere the error gives the one command to run. The
 * installer is injected, so nothing is installed here.
 */

import { deepStrictEqual, rejects, strictEqual } from "node:assert";
import {
  ensureRequirements,
  installCommand,
  MissingRequirementError,
  type Requirement,
} from "../core/cli/system_packages.ts";

/** A requirement that becomes present once "installed". */
function fake(name: string, installed: Set<string>, present = false): Requirement {
  return {
    package: name,
    why: `${name} is needed`,
    present: () => Promise.resolve(present || installed.has(name)),
  };
}

Deno.test("setup: nothing missing runs nothing", async () => {
  const calls: string[][] = [];
  const got = await ensureRequirements([fake("a", new Set(), true)], {
    purpose: "the tests",
    installer: { debian: true, root: true },
    run: (cmd, args) => (calls.push([cmd, ...args]), Promise.resolve(true)),
  });
  deepStrictEqual([got, calls], [[], []]);
});

Deno.test("setup: on Debian as root the missing packages are installed, saying what and why", async () => {
  const installed = new Set<string>();
  const calls: string[][] = [];
  const lines: string[] = [];
  const got = await ensureRequirements(
    [
      fake("present-one", installed, true),
      fake("redis-server", installed),
      fake("python3-torch", installed),
    ],
    {
      purpose: "the tests",
      installer: { debian: true, root: true },
      log: (l) => lines.push(l),
      run: (cmd, args) => {
        calls.push([cmd, ...args]);
        if (args[0] === "install") { for (const p of args.slice(4)) installed.add(p); }
        return Promise.resolve(true);
      },
    },
  );
  deepStrictEqual(got, ["redis-server", "python3-torch"]);
  deepStrictEqual(calls, [
    ["apt-get", "update", "-q"],
    ["apt-get", "install", "-y", "-q", "--no-install-recommends", "redis-server", "python3-torch"],
  ]);
  strictEqual(
    lines[0],
    "the tests: installing redis-server, python3-torch from Debian's archive:\n" +
      "  redis-server: redis-server is needed\n  python3-torch: python3-torch is needed",
  );
});

Deno.test("setup: elsewhere it stops at once with the one command to run", async () => {
  const calls: string[][] = [];
  const options = (debian: boolean, root: boolean) => ({
    purpose: "training",
    installer: { debian, root },
    run: (cmd: string, args: string[]) => (calls.push([cmd, ...args]), Promise.resolve(true)),
  });
  await rejects(
    ensureRequirements([fake("mesa-vulkan-drivers", new Set())], options(true, false)),
    (e: Error) =>
      e instanceof MissingRequirementError &&
      e.message.endsWith(
        "Run: sudo apt-get install -y --no-install-recommends mesa-vulkan-drivers",
      ),
  );
  await rejects(
    ensureRequirements([fake("redis-server", new Set())], options(false, true)),
    /Run: install the equivalents of Debian's redis-server with this system's package manager/,
  );
  deepStrictEqual(calls, [], "nothing run where it cannot install");
  strictEqual(
    installCommand(["a", "b"], { debian: true, root: true }),
    "apt-get install -y --no-install-recommends a b",
  );
});

Deno.test("setup: a failed install, or one that does not make it work, names the command", async () => {
  await rejects(
    ensureRequirements([fake("x", new Set())], {
      purpose: "the tests",
      installer: { debian: true, root: true },
      log: () => {},
      run: (_cmd, args) => Promise.resolve(args[0] !== "install"),
    }),
    /apt-get install failed; run: apt-get install -y --no-install-recommends x/,
  );
  await rejects(
    ensureRequirements([fake("x", new Set())], {
      purpose: "the tests",
      installer: { debian: true, root: true },
      log: () => {},
      run: () => Promise.resolve(true),
    }),
    /installed x, but x still does not work/,
  );
});
