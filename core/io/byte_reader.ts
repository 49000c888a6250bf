/**
 * A data file read as a stream, piece by piece — gunzipped on the way when it starts with the
 * gzip magic — so a large input is never held whole (`deno task predict`). Errors are
 * {@link DataError}s naming the file.
 *
 * @module
 */

import { DataError, isGzip } from "./data_files.ts";

/** A file's bytes (gunzipped when gzipped), read in pieces of the size asked for. */
export class ByteReader {
  /** The file, for messages. */
  readonly path: string;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #done = false;
  /** Bytes handed out so far (offset in the uncompressed stream). */
  offset = 0;

  private constructor(path: string, reader: ReadableStreamDefaultReader<Uint8Array>) {
    this.path = path;
    this.#reader = reader;
  }

  /** Opens `path`; a missing or unreadable file fails naming it. */
  static async open(path: string): Promise<ByteReader> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw new DataError(`${path}: not found`);
      throw new DataError(`${path}: cannot read: ${(e as Error).message}`);
    }
    const raw = file.readable.getReader();
    // The first bytes say whether the file is gzipped; they go back in front of the stream.
    const first: Uint8Array[] = [];
    let have = 0;
    while (have < 2) {
      const { value, done } = await raw.read();
      if (done) break;
      first.push(value);
      have += value.length;
    }
    const head = concat(first, have);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        if (head.length > 0) controller.enqueue(head);
      },
      async pull(controller) {
        const { value, done } = await raw.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel(reason) {
        return raw.cancel(reason);
      },
    });
    const bytes = isGzip(head)
      ? stream.pipeThrough(
        new DecompressionStream("gzip") as ReadableWritablePair<
          Uint8Array,
          Uint8Array
        >,
      )
      : stream;
    return new ByteReader(path, bytes.getReader());
  }

  /** Up to `n` bytes: exactly `n` unless the file ends first (then what is left, maybe none). */
  async read(n: number): Promise<Uint8Array> {
    while (this.#buffered < n && !this.#done) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await this.#reader.read();
      } catch (e) {
        throw new DataError(`${this.path}: corrupt gzip data: ${(e as Error).message}`);
      }
      if (next.done) this.#done = true;
      else if (next.value.length > 0) {
        this.#chunks.push(next.value);
        this.#buffered += next.value.length;
      }
    }
    const take = Math.min(n, this.#buffered);
    const all = concat(this.#chunks, this.#buffered);
    const out = all.slice(0, take);
    this.#chunks = take < all.length ? [all.subarray(take)] : [];
    this.#buffered -= take;
    this.offset += take;
    return out;
  }

  /** Exactly `n` bytes, or an error saying what `what` needed when the file ends first. */
  async readExactly(n: number, what: string): Promise<Uint8Array> {
    const bytes = await this.read(n);
    if (bytes.length < n) {
      throw new DataError(
        `${this.path}: truncated: ${what} needs ${n} bytes at byte ${
          this.offset - bytes.length
        }, found ${bytes.length}`,
      );
    }
    return bytes;
  }

  /** Whether the file has no bytes left. */
  async atEnd(): Promise<boolean> {
    const peek = await this.read(1);
    if (peek.length === 0) return true;
    this.#chunks.unshift(peek);
    this.#buffered += 1;
    this.offset -= 1;
    return false;
  }

  /** Stops reading and closes the file. */
  async close(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
