/**
 * Reading dataset files: plain or gzipped (recognised by the gzip magic, whatever the name), with
 * errors that name the file — {@link DataError}, whose message is one line starting with the
 * path and saying where in the file and what is wrong.
 *
 * @module
 */

import { join } from "node:path";

/** A missing, truncated or malformed data file; the message starts with the file's path. */
export class DataError extends Error {
  /** Always "DataError". */
  override name = "DataError";
}

/** Whether bytes start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Gunzips bytes; a corrupt stream fails naming `path`. */
export async function gunzip(
  bytes: Uint8Array<ArrayBuffer>,
  path: string,
): Promise<Uint8Array<ArrayBuffer>> {
  try {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new DataError(`${path}: corrupt gzip data: ${(e as Error).message}`);
  }
}

/** Reads a file, gunzipping it when it starts with the gzip magic; errors name the file. */
export async function readDataFile(path: string): Promise<Uint8Array<ArrayBuffer>> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new DataError(`${path}: not found`);
    throw new DataError(`${path}: cannot read: ${(e as Error).message}`);
  }
  return isGzip(bytes) ? await gunzip(bytes, path) : bytes;
}

/** The path of `dir/name` or else `dir/name.gz`, whichever exists; undefined when neither. */
export function existing(dir: string, name: string): string | undefined {
  for (const path of [join(dir, name), join(dir, `${name}.gz`)]) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** The names of the files in `dir`, sorted; fails naming the directory when it cannot be read. */
export function listDir(dir: string, what: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].filter((e) => e.isFile || e.isSymlink).map((e) => e.name)
      .sort();
  } catch (e) {
    const reason = e instanceof Deno.errors.NotFound ? "not found" : (e as Error).message;
    throw new DataError(`${dir}: cannot read the ${what} directory: ${reason}`);
  }
}
