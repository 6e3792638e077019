/**
 * The channel between the proxy thread and one plugin worker thread: request slots in a
 * SharedArrayBuffer. A phase call is written into a free slot and the worker is woken with
 * Atomics.notify (a busy worker blocks in Atomics.wait between calls, an idle one in
 * Atomics.waitAsync); the worker writes each member's
 * answer into the same slot as it finishes and wakes the proxy thread with one small
 * message (the proxy thread never blocks; Atomics.waitAsync measured slower). This replaces a
 * piscina message per call (a structured clone, piscina's task bookkeeping and an
 * AbortSignal timer each way: 40–130 µs a round trip measured in bench/micro.ts); piscina
 * still creates, replaces and destroys the thread (worker-thread.ts).
 *
 *   slot: state · member running · request length · answers · seq   (Int32 words)
 *         started-at of the member running                          (Float64)
 *         bytes: the encoded call, then the answers overwrite it
 *
 * A call or an answer larger than a slot goes over the channel's MessagePort instead (the
 * slot then says so); it is read with receiveMessageOnPort, so it is still one wake-up.
 * Encoding is node:v8's serializer (the structured clone format: Uint8Array and bigint
 * included), the same data a piscina message carries.
 */
import { deserialize, serialize } from 'node:v8';
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';

/** Slots per worker thread: calls beyond it wait on the proxy thread for a free slot. */
export const SLOTS = 32;
/** Bytes per slot: a 10-header request head encodes to ≈ 0.6 KiB. */
export const SLOT_BYTES = 16 * 1024;

export const FREE = 0;
export const POSTED = 1;
export const RUNNING = 2;
export const DONE = 3;

// Header words.
const DOORBELL = 0; // bumped by the proxy thread after posting a slot
const WAKING = 1; // 1 while a wake-up message to the proxy thread is out
const CLOSED = 2;
const HEADER_WORDS = 4;
// Slot words.
const STATE = 0;
const MEMBER = 1;
const LENGTH = 2; // request bytes, or -1: the request is on the port
const ANSWERS = 3; // answer records written
const SEQ = 4;
const SLOT_WORDS = 8;

/** After a call, how long the worker blocks on the doorbell for the next one before it goes idle. */
const HOT_MS = 2;
/** While calls keep coming, how often the worker still lets its event loop run (loads, cancels). */
const YIELD_MS = 10;

/** A record whose length is this: the value is on the port. */
const ON_PORT = -1;

export class ChannelMemory {
  readonly sab: SharedArrayBuffer;
  readonly ctl: Int32Array;
  readonly times: Float64Array;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly slots: number;

  constructor(sab?: SharedArrayBuffer, slots = SLOTS) {
    const ctlBytes = (HEADER_WORDS + slots * SLOT_WORDS) * 4;
    const timeBytes = slots * 8;
    this.sab = sab ?? new SharedArrayBuffer(ctlBytes + timeBytes + slots * SLOT_BYTES);
    this.slots = Math.floor((this.sab.byteLength - HEADER_WORDS * 4) / (SLOT_WORDS * 4 + 8 + SLOT_BYTES));
    this.ctl = new Int32Array(this.sab, 0, HEADER_WORDS + this.slots * SLOT_WORDS);
    this.times = new Float64Array(this.sab, (HEADER_WORDS + this.slots * SLOT_WORDS) * 4, this.slots);
    const start = (HEADER_WORDS + this.slots * SLOT_WORDS) * 4 + this.slots * 8;
    this.bytes = new Uint8Array(this.sab, start, this.slots * SLOT_BYTES);
    this.view = new DataView(this.sab, start, this.slots * SLOT_BYTES);
  }

  word(slot: number, w: number): number {
    return HEADER_WORDS + slot * SLOT_WORDS + w;
  }

  state(slot: number): number {
    return Atomics.load(this.ctl, this.word(slot, STATE));
  }

  member(slot: number): number {
    return Atomics.load(this.ctl, this.word(slot, MEMBER));
  }

  startedAt(slot: number): number {
    return this.times[slot]!;
  }

  get closed(): boolean {
    return Atomics.load(this.ctl, CLOSED) === 1;
  }

  close(): void {
    Atomics.store(this.ctl, CLOSED, 1);
    Atomics.add(this.ctl, DOORBELL, 1);
    Atomics.notify(this.ctl, DOORBELL);
  }
}

const now = (): number => performance.timeOrigin + performance.now();

/**
 * Decodes a value from shared memory. node:v8's deserializer returns typed arrays as views
 * on the bytes it was given, so it gets a copy: the slot is reused as soon as it is read.
 */
function decode(bytes: Uint8Array, off: number, len: number): unknown {
  return deserialize(Buffer.from(bytes.subarray(off, off + len)));
}

/** Messages on the port: a request or an answer that did not fit its slot. */
interface PortMessage {
  readonly seq: number;
  readonly index: number;
  readonly value: unknown;
}

/** Takes the port message for (seq, index), keeping others that arrive first. */
function fromPort(port: MessagePort, stash: Map<string, unknown>, seq: number, index: number): unknown {
  const key = `${seq}:${index}`;
  for (;;) {
    if (stash.has(key)) {
      const v = stash.get(key);
      stash.delete(key);
      return v;
    }
    const m = receiveMessageOnPort(port);
    if (m === undefined) throw new Error(`plugin worker channel: message ${key} is missing from the port`);
    const msg = m.message as PortMessage;
    stash.set(`${msg.seq}:${msg.index}`, msg.value);
  }
}

/** The proxy thread's end of one channel (one worker thread's lifetime). */
export class ChannelClient {
  readonly mem: ChannelMemory;
  private readonly port: MessagePort;
  private readonly stash = new Map<string, unknown>();
  private seq = 0;
  private readonly free: number[] = [];

  constructor(mem: ChannelMemory, port: MessagePort) {
    this.mem = mem;
    this.port = port;
    for (let i = mem.slots - 1; i >= 0; i--) this.free.push(i);
  }

  /** A free slot, or undefined when all are taken. */
  acquire(): number | undefined {
    return this.free.pop();
  }

  release(slot: number): void {
    Atomics.store(this.mem.ctl, this.mem.word(slot, STATE), FREE);
    this.free.push(slot);
  }

  /** Writes `call` into `slot` and wakes the worker. */
  post(slot: number, call: unknown): void {
    const m = this.mem;
    const seq = ++this.seq;
    const enc = serialize(call);
    const w = (x: number): number => m.word(slot, x);
    m.ctl[w(SEQ)] = seq;
    m.ctl[w(ANSWERS)] = 0;
    m.ctl[w(MEMBER)] = -1;
    if (enc.length <= SLOT_BYTES) {
      m.bytes.set(enc, slot * SLOT_BYTES);
      m.ctl[w(LENGTH)] = enc.length;
    } else {
      this.port.postMessage({ seq, index: -1, value: call } satisfies PortMessage);
      m.ctl[w(LENGTH)] = ON_PORT;
    }
    Atomics.store(m.ctl, w(STATE), POSTED);
    Atomics.add(m.ctl, DOORBELL, 1);
    Atomics.notify(m.ctl, DOORBELL);
  }

  /** The answers written so far in `slot` (all of them once it is DONE). */
  answers(slot: number): unknown[] {
    const m = this.mem;
    const n = Atomics.load(m.ctl, m.word(slot, ANSWERS));
    const seq = m.ctl[m.word(slot, SEQ)]!;
    const out: unknown[] = [];
    let off = slot * SLOT_BYTES;
    for (let i = 0; i < n; i++) {
      const len = m.view.getInt32(off);
      off += 4;
      if (len === ON_PORT) out.push(fromPort(this.port, this.stash, seq, i));
      else {
        out.push(decode(m.bytes, off, len));
        off += len;
      }
    }
    return out;
  }

  /** Called on a wake-up message, before looking for finished slots: the next finish wakes again. */
  woken(): void {
    Atomics.store(this.mem.ctl, WAKING, 0);
  }
}

/** What the worker does with one decoded call; `progress` reports each member as it starts and ends. */
export type CallHandler = (call: unknown, progress: ChannelProgress) => Promise<void>;

export interface ChannelProgress {
  /** Member `index` of the call starts now (its deadline runs from here). */
  start(index: number): void;
  /** One answer record, in order. */
  answer(value: unknown): void;
}

/**
 * The worker's end: waits for posted slots and runs them one by one. Resolves when the
 * proxy thread closes the channel.
 */
export async function serveChannel(mem: ChannelMemory, port: MessagePort, wake: MessagePort, handle: CallHandler): Promise<void> {
  const stash = new Map<string, unknown>();
  let seen = 0;
  const run = async (slot: number): Promise<void> => {
    const w = (x: number): number => mem.word(slot, x);
    const seq = mem.ctl[w(SEQ)]!;
    const len = mem.ctl[w(LENGTH)]!;
    let off = slot * SLOT_BYTES;
    const end = off + SLOT_BYTES;
    let count = 0;
    const progress: ChannelProgress = {
      start(index) {
        mem.times[slot] = now();
        Atomics.store(mem.ctl, w(MEMBER), index);
      },
      answer(value) {
        const enc = serialize(value);
        if (off + 4 + enc.length <= end) {
          mem.view.setInt32(off, enc.length);
          mem.bytes.set(enc, off + 4);
          off += 4 + enc.length;
        } else if (off + 4 <= end) {
          port.postMessage({ seq, index: count, value } satisfies PortMessage);
          mem.view.setInt32(off, ON_PORT);
          off += 4;
        } else throw new Error('plugin worker channel: too many answers for one slot');
        Atomics.store(mem.ctl, w(ANSWERS), ++count);
      },
    };
    try {
      const call = len === ON_PORT ? fromPort(port, stash, seq, -1) : decode(mem.bytes, slot * SLOT_BYTES, len);
      await handle(call, progress);
    } catch (err) {
      // The proxy thread blames the member that was running.
      progress.answer({ fault: (err as Error).message });
    } finally {
      Atomics.store(mem.ctl, w(STATE), DONE);
      // One message wakes the proxy thread for every slot finished until it looks.
      if (Atomics.compareExchange(mem.ctl, WAKING, 0, 1) === 0) wake.postMessage(0);
    }
  };
  // One call at a time, in the order posted (as one piscina task at a time did): a call
  // still waiting in its slot when its thread is replaced was never started, so it is sent
  // again to the replacement instead of failing with its co-tenant.
  let yielded = performance.now();
  while (!mem.closed) {
    seen = Atomics.load(mem.ctl, DOORBELL);
    const posted: number[] = [];
    for (let s = 0; s < mem.slots; s++) if (Atomics.load(mem.ctl, mem.word(s, STATE)) === POSTED) posted.push(s);
    posted.sort((a, b) => mem.ctl[mem.word(a, SEQ)]! - mem.ctl[mem.word(b, SEQ)]!);
    for (const s of posted) {
      mem.times[s] = now();
      Atomics.store(mem.ctl, mem.word(s, STATE), RUNNING);
      await run(s);
    }
    if (posted.length) {
      if (performance.now() - yielded > YIELD_MS) {
        await new Promise((r) => setImmediate(r));
        yielded = performance.now();
      }
      continue;
    }
    // Busy: block on the doorbell for a moment (a futex wake-up is several times faster than
    // Atomics.waitAsync's, measured in bench/micro.ts). Idle: wait with the event loop free
    // (polling with Atomics.wait timeouts cost 25 % of a core for four idle threads).
    if (Atomics.wait(mem.ctl, DOORBELL, seen, HOT_MS) !== 'timed-out') continue;
    const r = Atomics.waitAsync(mem.ctl, DOORBELL, seen);
    if (r.async) await r.value;
    yielded = performance.now();
  }
}
