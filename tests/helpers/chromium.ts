/**
 * Headless Chromium (Debian's `chromium`, which `deno task test` installs) driven over the Chrome
 * DevTools protocol on Deno's own WebSocket: open a page, collect what it logs, evaluate
 * expressions, take a screenshot. Started with no network of its own (no background requests, no
 * component updates) and a fresh profile, removed on close.
 */

export const CHROMIUM = "/usr/bin/chromium";

/** Something the page reported: a console error, an uncaught exception, a log entry. */
export interface PageProblem {
  kind: string;
  text: string;
}

type Message = {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
};

/** One page of a running browser. */
export class Page {
  readonly problems: PageProblem[] = [];
  /** Every URL the page requested. */
  readonly requests: string[] = [];
  #next = 1;
  readonly #pending = new Map<number, { resolve(v: Message): void; reject(e: Error): void }>();
  readonly #waiters: { method: string; resolve(): void }[] = [];
  #session = "";

  private constructor(readonly ws: WebSocket) {
    ws.onmessage = (e) => this.#receive(JSON.parse(e.data as string) as Message);
  }

  /** Connects to the browser at `url` and opens a blank page. */
  static async connect(url: string): Promise<Page> {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`cannot connect to Chromium at ${url}`));
    });
    const page = new Page(ws);
    const { targetId } = await page.#browser("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await page.#browser("Target.attachToTarget", { targetId, flatten: true });
    page.#session = sessionId as string;
    for (const domain of ["Page", "Runtime", "Log", "Network"]) await page.send(`${domain}.enable`);
    return page;
  }

  #receive(m: Message): void {
    if (m.id !== undefined) {
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (m.error) p?.reject(new Error(`Chromium: ${m.error.message}`));
      else p?.resolve(m);
      return;
    }
    const params = m.params ?? {};
    if (
      m.method === "Runtime.consoleAPICalled" && ["error", "assert"].includes(params.type as string)
    ) {
      const args = (params.args as { value?: unknown; description?: string }[]) ?? [];
      this.problems.push({
        kind: `console.${params.type}`,
        text: args.map((a) => String(a.value ?? a.description)).join(" "),
      });
    } else if (m.method === "Runtime.exceptionThrown") {
      const d = params.exceptionDetails as { text: string; exception?: { description?: string } };
      this.problems.push({ kind: "exception", text: d.exception?.description ?? d.text });
    } else if (m.method === "Network.requestWillBeSent") {
      this.requests.push((params.request as { url: string }).url);
    } else if (m.method === "Log.entryAdded") {
      const entry = params.entry as { level: string; text: string; url?: string };
      if (entry.level === "error") {
        this.problems.push({ kind: "log", text: `${entry.text} ${entry.url ?? ""}`.trim() });
      }
    }
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      if (this.#waiters[i]!.method === m.method) this.#waiters.splice(i, 1)[0]!.resolve();
    }
  }

  #call(method: string, params: Record<string, unknown>, session?: string): Promise<Message> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.ws.send(
        JSON.stringify({ id, method, params, ...(session ? { sessionId: session } : {}) }),
      );
    });
  }

  async #browser(method: string, params: Record<string, unknown> = {}) {
    return (await this.#call(method, params)).result ?? {};
  }

  /** Sends a command to the page; returns its result. */
  async send(method: string, params: Record<string, unknown> = {}) {
    return (await this.#call(method, params, this.#session)).result ?? {};
  }

  /** Opens `url` and waits for its load event. */
  async goto(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) =>
      this.#waiters.push({ method: "Page.loadEventFired", resolve })
    );
    const r = await this.send("Page.navigate", { url });
    if (r.errorText) throw new Error(`Chromium cannot open ${url}: ${r.errorText}`);
    await loaded;
  }

  /** The value of a JavaScript expression in the page (awaited if a promise). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    if (r.exceptionDetails) {
      throw new Error(`in the page: ${JSON.stringify(r.exceptionDetails)}`);
    }
    return (r.result as { value: T }).value;
  }

  /** A PNG of the whole page at `width` CSS pixels. */
  async screenshot(width = 1280): Promise<Uint8Array> {
    const height = await this.evaluate<number>("document.documentElement.scrollHeight");
    await this.send("Emulation.setDeviceMetricsOverride", {
      width,
      height,
      deviceScaleFactor: 1,
      mobile: false,
    });
    const r = await this.send("Page.captureScreenshot", { format: "png" });
    return Uint8Array.from(atob(r.data as string), (c) => c.charCodeAt(0));
  }
}

/** Starts Chromium, runs `fn` with a page, and closes the browser and its profile after. */
export async function withChromium<T>(fn: (page: Page) => Promise<T>): Promise<T> {
  const profile = await Deno.makeTempDir({ prefix: "chromium_profile_" });
  const child = new Deno.Command(CHROMIUM, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
      `--user-data-dir=${profile}`,
      "--remote-debugging-port=0",
      "--window-size=1280,900",
      "about:blank",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    const url = await devtoolsUrl(child.stderr);
    const page = await Page.connect(url);
    try {
      return await fn(page);
    } finally {
      page.ws.close();
    }
  } finally {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** Reads Chromium's stderr until it prints its DevTools address, then drains the rest. */
async function devtoolsUrl(stderr: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
    const m = /DevTools listening on (ws:\/\/\S+)/.exec(seen);
    if (m) {
      // Keep reading so that Chromium never blocks on a full pipe.
      (async () => {
        while (!(await reader.read()).done) { /* discard */ }
      })().catch(() => {});
      return m[1]!;
    }
  }
  throw new Error(`Chromium did not start (${CHROMIUM}); it said:\n${seen.slice(-2000)}`);
}
