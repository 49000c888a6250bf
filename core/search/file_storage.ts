/**
 * Optuna's file journal back-end (`JournalFileStorage` / `JournalFileBackend`, spec §1.8,
 * §2.3): one JSON record per `\n`-terminated line, appended under the journal lock with one
 * write and an fsync, read incrementally from the offset after the last parsed line.
 *
 * Torn lines: an unterminated or unparsable last line is skipped and re-read at the next sync
 * (Optuna 4.x); a bad line followed by another line is fatal, as in Optuna. Before appending,
 * the writer (holding the lock) truncates an unterminated tail left by a crashed writer, so a
 * crash mid-write never glues the fragment to the next record.
 * @module
 */

import { dirname } from "@std/path";
import { type FileLockOptions, JournalFileLock } from "./file_lock.ts";
import { JournalFormatError, type JournalRecord } from "./journal.ts";
import { pyParse } from "./pyjson.ts";

/** What {@link JournalStorage} needs from a back-end. */
export interface JournalBackend {
  /** The records appended since the previous call (all of them on the first call). */
  readRecords(): Promise<JournalRecord[]>;
  /** Appends serialised records, one line each, atomically with respect to other writers. */
  appendLines(lines: string[]): Promise<void>;
  /** Frees connections and handles. */
  close(): Promise<void>;
  /** Where the journal lives, for messages. */
  readonly description: string;
}

/** Options for {@link JournalFileBackend}. */
export interface FileBackendOptions extends FileLockOptions {
  /** fsync after each append (Optuna does; tests may turn it off). Default true. */
  fsync?: boolean;
}

const NL = 0x0a;
const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** A journal file shared with other processes and with Optuna. */
export class JournalFileBackend implements JournalBackend {
  readonly description: string;
  readonly lock: JournalFileLock;
  #offset = 0;
  readonly #fsync: boolean;

  private constructor(readonly path: string, opts: FileBackendOptions) {
    this.description = `journal file ${path}`;
    this.lock = new JournalFileLock(path, opts);
    this.#fsync = opts.fsync ?? true;
  }

  /**
   * Opens (creating it if absent, as Optuna does) the journal at `path`, and its folder if absent
   * (`--journal runs/study.log` on a fresh checkout).
   */
  static async open(path: string, opts: FileBackendOptions = {}): Promise<JournalFileBackend> {
    await Deno.mkdir(dirname(path), { recursive: true });
    (await Deno.open(path, { append: true, create: true })).close();
    return new JournalFileBackend(path, opts);
  }

  async readRecords(): Promise<JournalRecord[]> {
    const f = await Deno.open(this.path, { read: true });
    let bytes: Uint8Array;
    try {
      // Stop at the size seen now; later bytes wait for the next sync (Optuna ≥ 3.6).
      const size = (await f.stat()).size;
      if (size <= this.#offset) return [];
      bytes = new Uint8Array(size - this.#offset);
      await f.seek(this.#offset, Deno.SeekMode.Start);
      let got = 0;
      while (got < bytes.length) {
        const n = await f.read(bytes.subarray(got));
        if (n === null) break;
        got += n;
      }
      bytes = bytes.subarray(0, got);
    } finally {
      f.close();
    }
    const records: JournalRecord[] = [];
    const base = this.#offset;
    let start = 0;
    let pending: Error | null = null;
    while (start < bytes.length) {
      if (pending) throw pending;
      const end = bytes.indexOf(NL, start);
      if (end < 0) break; // unterminated tail: a write in progress or a crash; re-read later
      const lineOffset = base + start;
      let rec: JournalRecord | null = null;
      try {
        const v = pyParse(decoder.decode(bytes.subarray(start, end)));
        if (v === null || typeof v !== "object" || Array.isArray(v)) {
          throw new SyntaxError("not an object");
        }
        rec = v as JournalRecord;
      } catch (e) {
        pending = new JournalFormatError(
          `${this.description}: invalid record at byte ${lineOffset}: ${(e as Error).message}`,
        );
      }
      start = end + 1;
      if (rec) {
        records.push(rec);
        this.#offset = base + start;
      }
    }
    return records;
  }

  async appendLines(lines: string[]): Promise<void> {
    for (const l of lines) {
      if (l.includes("\n")) throw new RangeError(`journal record contains a newline: ${l}`);
    }
    const data = encoder.encode(lines.map((l) => l + "\n").join(""));
    await this.lock.acquire();
    try {
      await this.#dropTornTail();
      await this.#checkLastLine();
      const f = await Deno.open(this.path, { append: true });
      try {
        let written = 0;
        while (written < data.length) written += await f.write(data.subarray(written));
        if (this.#fsync) await f.sync();
      } finally {
        f.close();
      }
    } finally {
      await this.lock.release();
    }
  }

  /**
   * Refuses to append after a complete last line that is not a valid record: Optuna skips such a
   * line while it is last, but fails on the whole file once a record follows it.
   */
  async #checkLastLine(): Promise<void> {
    const f = await Deno.open(this.path, { read: true });
    let tail: Uint8Array;
    let start: number;
    try {
      const size = (await f.stat()).size;
      if (size === 0) return;
      start = Math.max(0, size - (1 << 20));
      tail = new Uint8Array(size - start);
      await f.seek(start, Deno.SeekMode.Start);
      let got = 0;
      while (got < tail.length) {
        const n = await f.read(tail.subarray(got));
        if (n === null) break;
        got += n;
      }
    } finally {
      f.close();
    }
    const end = tail.length - 1; // the final "\n" (the torn tail was dropped)
    const begin = tail.lastIndexOf(NL, end - 1) + 1;
    if (begin === 0 && start > 0) return; // a last line over 1 MiB: not checked here
    try {
      const v = pyParse(decoder.decode(tail.subarray(begin, end)));
      if (v !== null && typeof v === "object" && !Array.isArray(v)) return;
    } catch {
      // invalid: below
    }
    throw new JournalFormatError(
      `${this.description}: its last line (byte ${
        start + begin
      }) is not a valid record. Optuna skips it only while it is the last line, so nothing is appended after it (that would make the file unreadable for Optuna); remove that line to continue`,
    );
  }

  /** Truncates bytes after the last `\n` (a record a crashed writer never finished). */
  async #dropTornTail(): Promise<void> {
    const f = await Deno.open(this.path, { read: true, write: true });
    try {
      const size = (await f.stat()).size;
      if (size === 0) return;
      const chunk = new Uint8Array(4096);
      let end = size;
      while (end > 0) {
        const begin = Math.max(0, end - chunk.length);
        await f.seek(begin, Deno.SeekMode.Start);
        const buf = chunk.subarray(0, end - begin);
        let got = 0;
        while (got < buf.length) {
          const n = await f.read(buf.subarray(got));
          if (n === null) break;
          got += n;
        }
        const nl = buf.lastIndexOf(NL);
        if (nl >= 0) {
          const keep = begin + nl + 1;
          if (keep < size) await f.truncate(keep);
          return;
        }
        end = begin;
      }
      await f.truncate(0);
    } finally {
      f.close();
    }
  }

  async close(): Promise<void> {}
}
