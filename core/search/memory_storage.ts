/**
 * An in-process journal back-end: the same lines a file would hold, kept in an array. For tests
 * and for quick searches that need no persistence; several {@link JournalStorage}s may share
 * one instance to act as separate workers.
 * @module
 */

import type { JournalBackend } from "./file_storage.ts";
import type { JournalRecord } from "./journal.ts";
import { pyParse } from "./pyjson.ts";

/** Journal lines in memory; each reader keeps its own position (see {@link reader}). */
export class JournalMemoryBackend implements JournalBackend {
  readonly description = "in-memory journal";
  /** Every appended line, in order. */
  readonly lines: string[] = [];
  #next = 0;

  readRecords(): Promise<JournalRecord[]> {
    const out = this.lines.slice(this.#next).map((l) => pyParse(l) as JournalRecord);
    this.#next = this.lines.length;
    return Promise.resolve(out);
  }

  appendLines(lines: string[]): Promise<void> {
    this.lines.push(...lines);
    return Promise.resolve();
  }

  /** Another back-end over the same lines with its own read position (a second worker). */
  reader(): JournalBackend {
    let next = 0;
    return {
      description: this.description,
      readRecords: () => {
        const out = this.lines.slice(next).map((l) => pyParse(l) as JournalRecord);
        next = this.lines.length;
        return Promise.resolve(out);
      },
      appendLines: (lines) => this.appendLines(lines),
      close: () => Promise.resolve(),
    };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
