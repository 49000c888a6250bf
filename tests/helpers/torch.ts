/** Runs a PyTorch reference computation in Debian's python3, which has torch installed. */

/**
 * Runs `script` with `/usr/bin/python3`, writing `input` as JSON to its stdin, and returns the JSON
 * value the script prints on stdout.
 *
 * `script` is Python source (run with `-c`) or the URL of a `.py` file. `what` names the
 * computation in the error thrown when python3 exits with a non-zero code; that error carries
 * python's stderr.
 */
export async function runTorch(
  script: string | URL,
  input: unknown,
  what = "torch reference",
): Promise<unknown> {
  const child = new Deno.Command("/usr/bin/python3", {
    args: script instanceof URL ? [script.pathname] : ["-c", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Write while the output is being read; a failed write (python exited early) is reported only
  // after python's own error.
  const writing = (async () => {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify(input)));
    await writer.close();
  })().then(() => undefined, (e: unknown) => e);
  const { code, stdout, stderr } = await child.output();
  const writeError = await writing;
  if (code !== 0) {
    throw new Error(
      `${what}: python3 exited with code ${code}: ${new TextDecoder().decode(stderr)}`,
    );
  }
  if (writeError !== undefined) throw writeError;
  return JSON.parse(new TextDecoder().decode(stdout));
}
