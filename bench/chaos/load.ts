/**
 * The chaos scenarios' client: `concurrency` loops of requests (keep-alive or a new
 * connection each, HTTP or HTTPS) that record every outcome: status, the WEIR_ERR_* code of
 * an error body, socket errors, latency. A scenario asserts on these counts.
 */
import http from 'node:http';
import https from 'node:https';

export interface Outcome {
  readonly status: number;
  /** The error body's code, or the socket error's message for status 0. */
  readonly code: string | undefined;
  readonly ms: number;
  readonly at: number;
}

export interface LoadOptions {
  readonly concurrency?: number;
  /** A new connection per request (default: keep-alive). */
  readonly fresh?: boolean;
  /** HTTPS with this CA. */
  readonly ca?: Buffer;
  readonly timeoutMs?: number;
  /** Pause between a loop's requests. */
  readonly pauseMs?: number;
  readonly headers?: Record<string, string>;
}

export class Load {
  readonly outcomes: Outcome[] = [];
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private readonly agent: http.Agent;
  private readonly url: string | (() => string);
  private readonly o: LoadOptions;

  constructor(url: string | (() => string), o: LoadOptions = {}) {
    this.url = url;
    this.o = o;
    const Agent = o.ca ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: !o.fresh, maxSockets: o.concurrency ?? 8, ...(o.ca ? { ca: o.ca } : {}) });
    for (let i = 0; i < (o.concurrency ?? 8); i++) this.loops.push(this.loop());
  }

  private async loop(): Promise<void> {
    while (this.running) {
      this.outcomes.push(await one(typeof this.url === 'string' ? this.url : this.url(), { ...this.o, agent: this.o.fresh ? undefined : this.agent }));
      if (this.o.pauseMs) await new Promise((r) => setTimeout(r, this.o.pauseMs));
    }
  }

  async stop(): Promise<Outcome[]> {
    this.running = false;
    await Promise.all(this.loops);
    this.agent.destroy();
    return this.outcomes;
  }
}

/** One GET; never throws. */
export function one(url: string, o: LoadOptions & { agent?: http.Agent; method?: string } = {}): Promise<Outcome> {
  const t0 = performance.now();
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve) => {
    let done = false;
    const finish = (status: number, code: string | undefined): void => {
      if (done) return;
      done = true;
      resolve({ status, code, ms: performance.now() - t0, at: Date.now() });
    };
    const req = mod.request(url, { method: o.method ?? 'GET', agent: o.agent ?? false, headers: o.headers, ...(o.ca ? { ca: o.ca } : {}), timeout: o.timeoutMs ?? 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let code: string | undefined;
        if ((res.statusCode ?? 0) >= 400) {
          try {
            code = (JSON.parse(Buffer.concat(chunks).toString()) as { error?: { code?: string } }).error?.code;
          } catch {
            code = undefined;
          }
        }
        finish(res.statusCode ?? 0, code);
      });
      res.on('error', (e) => finish(0, `aborted: ${e.message}`));
      res.on('aborted', () => finish(0, 'aborted'));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => finish(0, (e as NodeJS.ErrnoException).code ?? e.message));
    req.end();
  });
}

/** `status code` → count, for observed-outcome strings. */
export function tally(outcomes: readonly Outcome[]): string {
  const m = new Map<string, number>();
  for (const o of outcomes) {
    const k = o.status === 200 ? '200' : `${o.status}${o.code ? ` ${o.code}` : ''}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n}× ${k}`).join(', ') || 'none';
}

export const ok = (outcomes: readonly Outcome[]): number => outcomes.filter((o) => o.status === 200).length;
