/**
 * One plugin worker thread as the proxy thread sees it: a piscina pool of one thread (it
 * creates, replaces and destroys the thread, and carries plugin loads: a compiled module
 * cannot go through shared memory) and the SharedArrayBuffer channel that carries every
 * hook call (worker-channel.ts). The thread runs one long `serve` task that answers the
 * channel until it is closed.
 *
 * Deadlines: the worker marks which member of a call is running and since when; a call
 * whose running member is past its `timeout-ms` gets the thread terminated (piscina fails
 * the serve task and starts a fresh thread). Then, per call on that thread: answered
 * ones keep their answers; the one past its deadline, and any other suspended in the
 * thread (JSPI), keep the answers of the members that finished and stop at the member that
 * was running (the proxy thread applies that member's failure mode); calls not yet started
 * are posted again to the replacement thread once it has loaded the plugins.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Logger } from '../../../host/src/observability/logger.ts';
import { ChannelClient, ChannelMemory, DONE, POSTED, RUNNING } from './worker-channel.ts';
import type { WorkerLoad, WorkerServe } from './worker-protocol.ts';

/** How a call ended short: the member index that was running when its thread went. */
export interface CallStopped {
  readonly member: number;
  /** True for the call whose member passed its deadline; false for a co-tenant of the thread. */
  readonly timeout: boolean;
  readonly message: string;
}

export interface CallAnswer {
  readonly answers: unknown[];
  readonly stopped?: CallStopped;
}

interface Pending {
  readonly call: unknown;
  /** `timeout-ms` per member index (the last one applies to any further index). */
  readonly timeouts: readonly number[];
  readonly resolve: (a: CallAnswer) => void;
  slot: number;
  timer: NodeJS.Timeout | undefined;
}

/** One thread's lifetime: its channel and its calls by slot. */
interface Incarnation {
  readonly client: ChannelClient;
  /** The worker's wake-up messages (a slot finished). */
  readonly wake: MessagePort;
  readonly bySlot: Array<Pending | undefined>;
  dead: boolean;
}

const now = (): number => performance.timeOrigin + performance.now();

/** Piscina refuses tasks while a terminated thread is being torn down: retry briefly. */
async function withRetry<T>(f: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await f();
    } catch (err) {
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

export interface WorkerThreadOptions {
  readonly filename: string;
  readonly workerData: unknown;
  readonly logger: Logger;
  /** Every plugin the thread must have: replayed into a replacement thread before it serves. */
  readonly loads: () => Iterable<WorkerLoad>;
  /** Slots of the channel (tests use few to fill it). */
  readonly slots?: number;
}

export class WorkerThread {
  /** Exposed for the containment test (piscina's 'error' events). */
  readonly pool: Piscina;
  private readonly opts: WorkerThreadOptions;
  private inc: Incarnation | undefined;
  private starting: Promise<void> | undefined;
  /** Calls waiting for a slot or for a (replacement) thread, in order. */
  private readonly waiting: Pending[] = [];
  private closed = false;
  /** Threads replaced after a deadline or a crash (tests and metrics read it). */
  replacements = 0;
  /** The loads the current thread has run (a replacement starts empty). */
  private loaded = new WeakSet<WorkerLoad>();

  constructor(opts: WorkerThreadOptions) {
    this.opts = opts;
    // Two tasks at once: the long serve task and a plugin load beside it.
    this.pool = new Piscina({ filename: opts.filename, minThreads: 1, maxThreads: 1, idleTimeout: 2 ** 31 - 1, concurrentTasksPerWorker: 2, workerData: opts.workerData });
    // A worker thread failing with no task in flight is reported on the pool: not fatal.
    this.pool.on('error', (err: Error) => opts.logger.error({ code: 'WEIR_ERR_INTERNAL', err: err.message }, 'plugin worker thread failed outside a request'));
    this.start();
  }

  /** Resolves when the current thread has booted and loaded its plugins (a failed start resolves too). */
  async ready(): Promise<void> {
    await this.starting;
  }

  /** Installs a plugin version in this thread (a piscina task: the module is cloned). */
  async load(task: WorkerLoad): Promise<void> {
    await this.starting;
    if (this.loaded.has(task)) return;
    this.loaded.add(task);
    await withRetry(() => this.pool.run(task));
  }

  /** Sends one call; resolves with its answers (never rejects: a lost thread is a `stopped`). */
  call(call: unknown, timeouts: readonly number[]): Promise<CallAnswer> {
    return new Promise((resolve) => {
      const p: Pending = { call, timeouts, resolve, slot: -1, timer: undefined };
      if (this.closed) resolve({ answers: [], stopped: { member: 0, timeout: false, message: 'the plugin worker pool is closed' } });
      else if (this.inc && this.waiting.length === 0) this.post(this.inc, p);
      else this.waiting.push(p);
    });
  }

  /** `gone`: a terminated thread's exit (piscina has dropped it once it resolves). */
  private start(gone?: Promise<unknown>): void {
    this.starting = (async () => {
      await gone?.catch(() => undefined);
      // The thread boots and loads its plugins outside any request's deadline.
      this.loaded = new WeakSet();
      for (const load of [...this.opts.loads()]) {
        this.loaded.add(load);
        await withRetry(() => this.pool.run(load));
      }
      if (this.closed) return;
      const mem = new ChannelMemory(undefined, this.opts.slots);
      const { port1, port2 } = new MessageChannel();
      port1.unref();
      const wake = new MessageChannel();
      const inc: Incarnation = { client: new ChannelClient(mem, port1), wake: wake.port1, bySlot: new Array(mem.slots).fill(undefined), dead: false };
      wake.port1.on('message', () => this.answered(inc));
      wake.port1.unref();
      const serve: WorkerServe = { op: 'serve', sab: mem.sab, port: port2, wake: wake.port2 };
      // No abort signal: piscina runs nothing beside an abortable task, and loads must.
      this.pool.run(serve, { transferList: [port2, wake.port2] as never }).then(
        () => this.lost(inc, 'the plugin worker thread stopped serving'),
        (err: Error) => this.lost(inc, `the plugin worker thread failed: ${err.message}`),
      );
      this.inc = inc;
      this.drain(inc);
    })().catch((err: unknown) => {
      // No thread could be started: every waiting call fails; the next call tries again.
      this.opts.logger.error({ code: 'WEIR_ERR_INTERNAL', err: (err as Error).message }, 'plugin worker thread could not start');
      for (const p of this.waiting.splice(0)) p.resolve({ answers: [], stopped: { member: 0, timeout: false, message: `the plugin worker thread could not start: ${(err as Error).message}` } });
      this.inc = undefined;
      this.starting = undefined;
      if (!this.closed) setTimeout(() => this.start(), 1000).unref();
    });
  }

  private drain(inc: Incarnation): void {
    while (this.waiting.length && !inc.dead) {
      const slot = inc.client.acquire();
      if (slot === undefined) return;
      this.postInto(inc, this.waiting.shift()!, slot);
    }
  }

  private post(inc: Incarnation, p: Pending): void {
    const slot = inc.client.acquire();
    if (slot === undefined) this.waiting.push(p);
    else this.postInto(inc, p, slot);
  }

  private postInto(inc: Incarnation, p: Pending, slot: number): void {
    p.slot = slot;
    inc.bySlot[slot] = p;
    inc.client.post(slot, p.call);
    this.arm(inc, p, p.timeouts[0]!);
  }

  private arm(inc: Incarnation, p: Pending, ms: number): void {
    p.timer = setTimeout(() => this.check(inc, p), Math.max(1, ms));
  }

  private timeoutOf(p: Pending, member: number): number {
    return p.timeouts[Math.min(Math.max(member, 0), p.timeouts.length - 1)]!;
  }

  /** A call's timer: past the running member's deadline → the thread is replaced. */
  private check(inc: Incarnation, p: Pending): void {
    if (inc.dead || inc.bySlot[p.slot] !== p) return;
    const m = inc.client.mem;
    const st = m.state(p.slot);
    if (st === DONE) return this.finish(inc, p.slot);
    // Not started: the thread is busy with other slots, whose own timers watch it.
    if (st === POSTED) return this.arm(inc, p, p.timeouts[0]!);
    const member = m.member(p.slot);
    const left = this.timeoutOf(p, member) - (now() - m.startedAt(p.slot));
    if (left > 0) return this.arm(inc, p, left);
    this.replace(inc, p, `exceeded its ${this.timeoutOf(p, member)} ms deadline; the worker thread was replaced`);
  }

  /** The worker finished one or more slots: hands their answers out. */
  private answered(inc: Incarnation): void {
    if (inc.dead) return;
    inc.client.woken();
    const m = inc.client.mem;
    for (let s = 0; s < m.slots; s++) if (inc.bySlot[s] && m.state(s) === DONE) this.finish(inc, s);
  }

  private finish(inc: Incarnation, slot: number, stopped?: CallStopped): void {
    const p = inc.bySlot[slot]!;
    clearTimeout(p.timer);
    const answers = inc.client.answers(slot);
    inc.bySlot[slot] = undefined;
    if (!inc.dead) inc.client.release(slot);
    p.resolve(stopped ? { answers, stopped } : { answers });
    if (!inc.dead) this.drain(inc);
  }

  /** Ends this thread (deadline passed, or it died): settles its calls, starts a replacement. */
  private replace(inc: Incarnation, culprit: Pending | undefined, message: string): void {
    if (inc.dead) return;
    inc.dead = true;
    this.inc = undefined;
    this.replacements++;
    // piscina sees its thread exit, fails the serve task and starts a fresh thread.
    const gone = culprit ? this.pool.threads[0]?.terminate() : undefined;
    inc.client.mem.close();
    inc.wake.close();
    const m = inc.client.mem;
    const again: Pending[] = [];
    for (let s = 0; s < m.slots; s++) {
      const p = inc.bySlot[s];
      if (!p) continue;
      const st = m.state(s);
      if (st === DONE) this.finish(inc, s);
      else if (st === RUNNING) {
        const member = Math.max(0, m.member(s));
        this.finish(inc, s, { member, timeout: p === culprit, message: p === culprit ? message : 'its plugin worker thread was replaced (another call on it passed its deadline or it failed)' });
      } else {
        clearTimeout(p.timer);
        inc.bySlot[s] = undefined;
        again.push(p);
      }
    }
    this.waiting.unshift(...again);
    if (!this.closed) this.start(gone);
  }

  /** The serve task ended without us aborting it: the thread died. */
  private lost(inc: Incarnation, message: string): void {
    if (inc.dead) return;
    this.opts.logger.warn({ code: 'WEIR_ERR_PLUGIN_TRAP', err: message }, 'plugin worker thread lost; replacing it');
    this.replace(inc, undefined, message);
  }

  async close(): Promise<void> {
    this.closed = true;
    const inc = this.inc;
    if (inc) {
      inc.dead = true;
      inc.client.mem.close();
      inc.wake.close();
      for (let s = 0; s < inc.bySlot.length; s++) if (inc.bySlot[s]) this.finish(inc, s, { member: 0, timeout: false, message: 'the plugin worker pool closed' });
    }
    for (const p of this.waiting.splice(0)) p.resolve({ answers: [], stopped: { member: 0, timeout: false, message: 'the plugin worker pool closed' } });
    await this.pool.destroy();
  }
}
