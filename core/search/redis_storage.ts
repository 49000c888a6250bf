/**
 * Optuna's Redis journal back-end (`JournalRedisStorage`, spec §7), over a minimal RESP2 client
 * on `Deno.connect`. Key layout: `PREFIX:log_number` holds the index of the last record (−1 when
 * empty, created by SETNX); record i is the string at `PREFIX:log:i`. An append runs one Lua
 * script that INCRs the counter and SETs the record, so records are atomic and totally ordered.
 * Optuna's pickled `PREFIX:snapshot` is ignored: records are never deleted, so reading them all
 * from 0 gives the same state.
 * @module
 */

import type { JournalBackend } from "./file_storage.ts";
import { JournalFormatError, type JournalRecord } from "./journal.ts";
import { pyParse } from "./pyjson.ts";

/** A RESP2 reply. */
export type RespValue = string | number | null | RespValue[];

/** An error reply from the server. */
export class RedisError extends Error {
  override name = "RedisError";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A minimal Redis client: one connection, one command at a time (or a pipeline). */
export class RespClient {
  #buf = new Uint8Array(0);
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly conn: Deno.TcpConn) {}

  /** Connects to `host:port`. */
  static async connect(host: string, port: number): Promise<RespClient> {
    const conn = await Deno.connect({ hostname: host, port });
    return new RespClient(conn);
  }

  /** Sends one command and returns its reply; throws {@link RedisError} on an error reply. */
  async command(...args: (string | number)[]): Promise<RespValue> {
    return (await this.pipeline([args]))[0]!;
  }

  /** Sends several commands in one write and returns their replies in order. */
  pipeline(commands: (string | number)[][]): Promise<RespValue[]> {
    const run = async () => {
      let out = "";
      for (const args of commands) {
        out += `*${args.length}\r\n`;
        for (const a of args) {
          const s = String(a);
          out += `$${encoder.encode(s).length}\r\n${s}\r\n`;
        }
      }
      const data = encoder.encode(out);
      let written = 0;
      while (written < data.length) written += await this.conn.write(data.subarray(written));
      const replies: RespValue[] = [];
      let error: RedisError | null = null;
      for (let i = 0; i < commands.length; i++) {
        const r = await this.#reply();
        if (r instanceof RedisError) error ??= r;
        else replies.push(r);
      }
      if (error) throw error;
      return replies;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  async #line(): Promise<string> {
    for (;;) {
      const i = this.#buf.indexOf(0x0d);
      if (i >= 0 && i + 1 < this.#buf.length && this.#buf[i + 1] === 0x0a) {
        const s = decoder.decode(this.#buf.subarray(0, i));
        this.#buf = this.#buf.subarray(i + 2);
        return s;
      }
      await this.#fill();
    }
  }

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(65536);
    const n = await this.conn.read(chunk);
    if (n === null) throw new RedisError("redis connection closed by the server");
    const merged = new Uint8Array(this.#buf.length + n);
    merged.set(this.#buf);
    merged.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = merged;
  }

  async #reply(): Promise<RespValue | RedisError> {
    const line = await this.#line();
    const kind = line[0];
    const rest = line.slice(1);
    if (kind === "+") return rest;
    if (kind === "-") return new RedisError(rest);
    if (kind === ":") return Number(rest);
    if (kind === "$") {
      const len = Number(rest);
      if (len < 0) return null;
      while (this.#buf.length < len + 2) await this.#fill();
      const s = decoder.decode(this.#buf.subarray(0, len));
      this.#buf = this.#buf.subarray(len + 2);
      return s;
    }
    if (kind === "*") {
      const n = Number(rest);
      if (n < 0) return null;
      const items: RespValue[] = [];
      for (let i = 0; i < n; i++) {
        const r = await this.#reply();
        if (r instanceof RedisError) return r;
        items.push(r);
      }
      return items;
    }
    throw new RedisError(`unexpected RESP reply ${JSON.stringify(line)}`);
  }

  /** Closes the connection. */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/** Where a `redis://[:password@]host[:port][/db]` URL points. */
export interface RedisUrl {
  host: string;
  port: number;
  db: number;
  password: string | null;
}

/** Parses a `redis://` URL (port 6379 and db 0 by default). */
export function parseRedisUrl(url: string): RedisUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError(`invalid redis URL ${JSON.stringify(url)}`);
  }
  if (u.protocol !== "redis:") {
    throw new RangeError(`redis URL must start with redis://, got ${JSON.stringify(url)}`);
  }
  const dbText = u.pathname.replace(/^\//, "");
  const db = dbText === "" ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) {
    throw new RangeError(`invalid redis db ${JSON.stringify(dbText)} in ${url}`);
  }
  const host = u.hostname.replace(/^\[|\]$/g, "") || "localhost";
  return {
    host,
    port: u.port === "" ? 6379 : Number(u.port),
    db,
    password: u.password === "" ? null : decodeURIComponent(u.password),
  };
}

const APPEND_SCRIPT = "local i = redis.call('incr', string.format('%s:log_number', ARGV[1])) " +
  "redis.call('set', string.format('%s:log:%d', ARGV[1], i), ARGV[2])";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Optuna's Redis journal layout over a {@link RespClient}. */
export class JournalRedisBackend implements JournalBackend {
  readonly description: string;
  #next = 0;

  private constructor(readonly client: RespClient, readonly prefix: string, url: string) {
    this.description = `redis journal ${url} prefix ${JSON.stringify(prefix)}`;
  }

  /** Connects to the server at `url` and selects its db. */
  static async open(url: string, prefix = ""): Promise<JournalRedisBackend> {
    const u = parseRedisUrl(url);
    const client = await RespClient.connect(u.host, u.port);
    try {
      if (u.password !== null) await client.command("AUTH", u.password);
      if (u.db !== 0) await client.command("SELECT", u.db);
    } catch (e) {
      client.close();
      throw e;
    }
    return new JournalRedisBackend(client, prefix, url);
  }

  async readRecords(): Promise<JournalRecord[]> {
    const maxText = await this.client.command("GET", `${this.prefix}:log_number`);
    if (maxText === null) return [];
    const max = Number(maxText);
    const records: JournalRecord[] = [];
    while (this.#next <= max) {
      const from = this.#next;
      const to = Math.min(max, from + 511);
      const keys: string[] = [];
      for (let i = from; i <= to; i++) keys.push(`${this.prefix}:log:${i}`);
      const values = (await this.client.command("MGET", ...keys)) as (string | null)[];
      for (let k = 0; k < values.length; k++) {
        let v = values[k] ?? null;
        // A non-atomic writer (cluster mode) may have INCRed without SETting yet: wait, as Optuna.
        for (let wait = 100; v === null; wait = Math.min(wait * 2, 10_000)) {
          await sleep(wait);
          v = (await this.client.command("GET", keys[k]!)) as string | null;
        }
        const n = from + k;
        let rec: JournalRecord;
        try {
          rec = pyParse(v) as JournalRecord;
        } catch (e) {
          if (n !== max) {
            throw new JournalFormatError(
              `${this.description}: invalid record ${n}: ${(e as Error).message}`,
            );
          }
          return records; // the last record may be re-read at the next sync, as Optuna does
        }
        records.push(rec);
        this.#next = n + 1;
      }
    }
    return records;
  }

  async appendLines(lines: string[]): Promise<void> {
    await this.client.command("SETNX", `${this.prefix}:log_number`, -1);
    for (const line of lines) {
      await this.client.command("EVAL", APPEND_SCRIPT, 0, this.prefix, line);
    }
  }

  close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }
}
