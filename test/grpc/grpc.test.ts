/**
 * gRPC through Weir with @grpc/grpc-js on both ends (an h2c and a TLS listener in front of
 * a `protocol "h2"` upstream): every call shape, statuses with metadata (trailers-only and
 * after messages), 4 MiB and 32 MiB messages both ways, deadlines, cancellation, limits
 * firing mid-stream, and gRPC-shaped proxy errors.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startWeirWith } from '../helpers/weir.ts';
import { createPki } from '../helpers/tls.ts';
import type { Weir } from '../../host/src/weir.ts';
import type { Phase } from '../../host/src/pipeline/phases.ts';
import { NO_BODY } from '../../host/src/pipeline/phases.ts';
import type { FilterRegistry } from '../../host/src/filters/registry.ts';

const PROTO = fileURLToPath(new URL('../fixtures/grpc/echo.proto', import.meta.url));
const MiB = 1024 * 1024;
const LIMITS = { 'grpc.max_receive_message_length': 64 * MiB, 'grpc.max_send_message_length': 64 * MiB };

interface Msg {
  data?: Buffer;
  count?: number;
  fail?: string;
  delayMs?: number;
  total?: string | number;
}
type EchoClient = grpc.Client & {
  Unary(m: Msg, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientUnaryCall;
  ServerStream(m: Msg, md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<Msg>;
  ClientStream(md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientWritableStream<Msg>;
  Bidi(md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientDuplexStream<Msg, Msg>;
};

const def = protoLoader.loadSync(PROTO, { longs: String, defaults: true });
const pkg = grpc.loadPackageDefinition(def) as unknown as { weirtest: { Echo: grpc.ServiceClientConstructor } };

/**
 * How upstream calls ended: 'cancelled' when the server saw the stream reset. (Node's http2
 * emits 'end' after 'aborted' on a reset too, so a reset call may also log an 'end'; a call
 * ended cleanly logs no 'cancelled'.)
 */
const serverSaw: Array<{ method: string; how: 'end' | 'cancelled'; bytes: number }> = [];

function failWith(call: { sendMetadata?: unknown }, spec: string): grpc.ServiceError {
  const [code, ...rest] = spec.split(':');
  const md = new grpc.Metadata();
  md.set('x-detail', 'why-' + code);
  md.set('x-bin-bin', Buffer.from([1, 2, 3]));
  void call;
  return Object.assign(new Error(rest.join(':')), { code: Number(code), details: rest.join(':'), metadata: md }) as grpc.ServiceError;
}

const impl: grpc.UntypedServiceImplementation = {
  Unary(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
    const m = call.request;
    const reply = (): void => {
      if (m.fail) return cb(failWith(call, m.fail));
      cb(null, { data: m.data, count: 1 });
    };
    if (m.delayMs) setTimeout(reply, m.delayMs);
    else reply();
  },
  ServerStream(call: grpc.ServerWritableStream<Msg, Msg>) {
    const m = call.request;
    let i = 0;
    let cancelled = false;
    call.on('cancelled', () => {
      cancelled = true;
      serverSaw.push({ method: 'ServerStream', how: 'cancelled', bytes: i });
    });
    const next = (): void => {
      if (cancelled) return;
      if (i >= (m.count ?? 0)) {
        if (m.fail) call.emit('error', failWith(call, m.fail));
        else call.end();
        return;
      }
      i++;
      const ok = call.write({ data: m.data, count: i });
      const go = (): void => void (m.delayMs ? setTimeout(next, m.delayMs) : setImmediate(next));
      if (ok) go();
      else call.once('drain', go);
    };
    next();
  },
  ClientStream(call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
    let n = 0;
    let bytes = 0;
    call.on('data', (m: Msg) => {
      n++;
      bytes += m.data?.length ?? 0;
    });
    call.on('cancelled', () => serverSaw.push({ method: 'ClientStream', how: 'cancelled', bytes }));
    call.on('end', () => {
      serverSaw.push({ method: 'ClientStream', how: 'end', bytes });
      cb(null, { count: n, total: bytes });
    });
  },
  Bidi(call: grpc.ServerDuplexStream<Msg, Msg>) {
    let bytes = 0;
    call.on('data', (m: Msg) => {
      bytes += m.data?.length ?? 0;
      if (m.fail) return void call.emit('error', failWith(call, m.fail));
      call.write({ data: m.data, count: 1 });
    });
    call.on('cancelled', () => serverSaw.push({ method: 'Bidi', how: 'cancelled', bytes }));
    call.on('end', () => {
      serverSaw.push({ method: 'Bidi', how: 'end', bytes });
      call.end();
    });
  },
};

let server: grpc.Server;
let weir: Weir;
let h2cPort = 0;
let tlsPort = 0;
let caPem: Buffer;
let deadPort = 0;
const clients: grpc.Client[] = [];

/** A test filter: `x-test-reply: <status>` answers locally (grpc-status too when given). */
const extendFilters = (registry: FilterRegistry): void => {
  const builtin = registry.get('headers')!;
  registry.register('headers', (cfg, env) =>
    cfg.name !== 'local-reply'
      ? builtin(cfg, env)
      : ({
          name: cfg.name,
          kind: 'test:local-reply',
          failureMode: 'closed',
          requestBody: NO_BODY,
          responseBody: NO_BODY,
          onRequestHeaders: (ctx) => {
            const v = ctx.request.headers['x-test-reply'];
            if (typeof v !== 'string') return undefined;
            if (v.startsWith('grpc-')) return { status: 200, headers: { 'grpc-status': v.slice(5), 'grpc-message': 'from a filter' } };
            return { status: Number(v), body: 'denied by policy' };
          },
        }) satisfies Phase,
  );
};

before(async () => {
  server = new grpc.Server(LIMITS);
  server.addService(pkg.weirtest.Echo.service, impl);
  const grpcPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
  const dead = net.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  deadPort = (dead.address() as net.AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const pki = createPki();
  const cert = pki.server('weir', ['localhost', '127.0.0.1']);
  caPem = pki.caPem;
  const up = (name: string, port: number, extra = ''): string => `upstream "${name}" { target "127.0.0.1:${port}"; protocol "h2"; ${extra} }`;
  const started = await startWeirWith(
    `
listeners {
    listener "h2c" { address "127.0.0.1:0"; protocol "h2c"; }
    listener "tls" { address "127.0.0.1:0"; protocol "https"; tls { cert-file "${cert.cert}"; key-file "${cert.key}"; } }
}
filters { filter "local-reply" { type "headers"; request { set "x-unused" "1"; } } }
routes {
    route "limited" { priority 10; matches { path-prefix "/weirtest.Echo/"; header "x-route" "limited"; }; upstream "grpc"; policies { max-body-size "1MiB"; } }
    route "deadline" { priority 10; matches { path-prefix "/weirtest.Echo/"; header "x-route" "deadline"; }; upstream "grpc"; policies { timeout-secs 0.3; } }
    route "dead" { priority 10; matches { path-prefix "/weirtest.Echo/"; header "x-route" "dead"; }; upstream "dead"; }
    route "grpc" { matches { path-prefix "/weirtest.Echo/"; }; upstream "grpc"; filters "local-reply"; }
}
upstreams {
    ${up('grpc', grpcPort)}
    ${up('dead', deadPort)}
}
system { graceful-shutdown-timeout-secs 1 }
`,
    { extendFilters },
  );
  weir = started.weir;
  h2cPort = weir.address('h2c').port;
  tlsPort = weir.address('tls').port;
});

after(async () => {
  for (const c of clients) c.close();
  await weir?.close();
  server?.forceShutdown();
});

function clientFor(kind: 'h2c' | 'tls'): EchoClient {
  const c =
    kind === 'h2c'
      ? new pkg.weirtest.Echo(`127.0.0.1:${h2cPort}`, grpc.credentials.createInsecure(), LIMITS)
      : new pkg.weirtest.Echo(`localhost:${tlsPort}`, grpc.credentials.createSsl(caPem), LIMITS);
  clients.push(c);
  return c as unknown as EchoClient;
}

function md(route?: string, extra: Record<string, string> = {}): grpc.Metadata {
  const m = new grpc.Metadata();
  if (route) m.set('x-route', route);
  for (const [k, v] of Object.entries(extra)) m.set(k, v);
  return m;
}

function unary(c: EchoClient, m: Msg, meta = md(), opts: grpc.CallOptions = {}): Promise<{ err: grpc.ServiceError | null; res?: Msg; trailers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const call = c.Unary(m, meta, { deadline: Date.now() + 20_000, ...opts }, (err, res) => setImmediate(() => resolve({ err, res, trailers })));
    call.on('status', (s: grpc.StatusObject) => {
      trailers = s.metadata;
    });
  });
}

function collect<T>(s: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>): Promise<{ msgs: T[]; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    const msgs: T[] = [];
    let status: grpc.StatusObject | undefined;
    let ended = false;
    const done = (): void => {
      if (status && ended) resolve({ msgs, status });
    };
    s.on('data', (m: T) => msgs.push(m));
    s.on('status', (st: grpc.StatusObject) => {
      status = st;
      done();
    });
    s.on('error', () => {
      ended = true;
      done();
    });
    s.on('end', () => {
      ended = true;
      done();
    });
  });
}

const pattern = (n: number, seed: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4096) b.fill((i / 4096 + seed) & 0xff, i, Math.min(n, i + 4096));
  return b;
};

for (const kind of ['h2c', 'tls'] as const) {
  describe(`gRPC through the ${kind} listener`, () => {
    test('unary round trip', async () => {
      const r = await unary(clientFor(kind), { data: Buffer.from('hello') });
      assert.equal(r.err, null);
      assert.equal(r.res!.data!.toString(), 'hello');
    });

    test('error statuses with metadata: trailers-only and after messages', async () => {
      const c = clientFor(kind);
      const r = await unary(c, { fail: '3:bad argument here' });
      assert.equal(r.err?.code, grpc.status.INVALID_ARGUMENT, `trailers-only status: ${r.err?.details}`);
      assert.equal(r.err?.details, 'bad argument here');
      assert.deepEqual(r.err?.metadata.get('x-detail'), ['why-3']);
      assert.deepEqual(r.err?.metadata.get('x-bin-bin'), [Buffer.from([1, 2, 3])]);
      const s = await collect(c.ServerStream({ data: Buffer.from('m'), count: 3, fail: '9:precondition after 3' }));
      assert.equal(s.msgs.length, 3, 'the messages before the status arrive');
      assert.equal(s.status.code, grpc.status.FAILED_PRECONDITION);
      assert.equal(s.status.details, 'precondition after 3');
      assert.deepEqual(s.status.metadata.get('x-detail'), ['why-9']);
    });

    test('server, client and bidi streaming', async () => {
      const c = clientFor(kind);
      const s = await collect(c.ServerStream({ data: Buffer.alloc(1000, 1), count: 50 }));
      assert.equal(s.status.code, grpc.status.OK);
      assert.equal(s.msgs.length, 50);
      const cs = await new Promise<Msg>((resolve, reject) => {
        const w = c.ClientStream(md(), {}, (err, res) => (err ? reject(err) : resolve(res!)));
        for (let i = 0; i < 40; i++) w.write({ data: Buffer.alloc(2000, 2) });
        w.end();
      });
      assert.equal(cs.count, 40);
      assert.equal(Number(cs.total), 80_000);
      const bidi = c.Bidi();
      const got = collect(bidi);
      for (let i = 0; i < 30; i++) bidi.write({ data: Buffer.from(`ping ${i}`) });
      bidi.end();
      const b = await got;
      assert.equal(b.status.code, grpc.status.OK);
      assert.deepEqual(b.msgs.map((m) => m.data!.toString()), Array.from({ length: 30 }, (_, i) => `ping ${i}`));
    });

    test('4 MiB messages both ways, 20 times; 32 MiB, 3 times', async () => {
      const c = clientFor(kind);
      for (const [size, times] of [[4 * MiB, 20], [32 * MiB, 3]] as const) {
        for (let i = 0; i < times; i++) {
          const data = pattern(size, i);
          const r = await unary(c, { data });
          assert.equal(r.err, null, `${size} bytes, call ${i}: ${r.err?.message}`);
          assert.equal(r.res!.data!.length, size, `${size} bytes, call ${i}: the whole reply`);
          assert.ok(r.res!.data!.equals(data), `${size} bytes, call ${i}: the same bytes`);
        }
      }
    });

    test('a deadline the server misses ends in DEADLINE_EXCEEDED', async () => {
      const t0 = Date.now();
      const r = await unary(clientFor(kind), { delayMs: 2000 }, md(), { deadline: Date.now() + 300 });
      assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
      assert.ok(Date.now() - t0 < 1500, 'on time');
    });

    test('cancelling a server stream cancels the upstream call', async () => {
      const before = serverSaw.filter((s) => s.method === 'ServerStream' && s.how === 'cancelled').length;
      const s = clientFor(kind).ServerStream({ data: Buffer.from('tick'), count: 100_000, delayMs: 5 });
      const status = new Promise<grpc.StatusObject>((r) => s.on('status', r));
      s.on('error', () => {});
      await new Promise<void>((r) => s.once('data', () => r()));
      s.cancel();
      assert.equal((await status).code, grpc.status.CANCELLED);
      for (let i = 0; i < 100 && serverSaw.filter((x) => x.method === 'ServerStream' && x.how === 'cancelled').length === before; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(serverSaw.filter((x) => x.method === 'ServerStream' && x.how === 'cancelled').length, before + 1, 'the server saw the cancellation');
    });

    test('a client stream over the route body limit: the server sees an abort, the client RESOURCE_EXHAUSTED at once', async () => {
      const before = serverSaw.length;
      const c = clientFor(kind);
      const t0 = Date.now();
      const err = await new Promise<grpc.ServiceError | null>((resolve) => {
        const w = c.ClientStream(md('limited'), { deadline: Date.now() + 10_000 }, (e) => resolve(e));
        w.on('error', () => {});
        // 6 × 256 KiB: over the 1 MiB limit after the fourth message; the stream stays open.
        for (let i = 0; i < 6; i++) w.write({ data: Buffer.alloc(256 * 1024, 3) });
      });
      assert.equal(err?.code, grpc.status.RESOURCE_EXHAUSTED, `status: ${err?.code} ${err?.details}`);
      assert.match(err!.details, /WEIR_ERR_BODY_TOO_LARGE/);
      assert.ok(Date.now() - t0 < 5000, 'answered at once, not at the deadline');
      const cancelled = (): boolean => serverSaw.slice(before).some((s) => s.method === 'ClientStream' && s.how === 'cancelled');
      for (let i = 0; i < 100 && !cancelled(); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(cancelled(), 'the upstream stream was reset, never ended cleanly');
    });

    test('a bidi stream over the limit after the response started ends with RESOURCE_EXHAUSTED in trailers', async () => {
      const before = serverSaw.length;
      const bidi = clientFor(kind).Bidi(md('limited'), { deadline: Date.now() + 10_000 });
      const got = collect(bidi);
      bidi.write({ data: Buffer.alloc(1000, 1) });
      await new Promise<void>((r) => bidi.once('data', () => r()));
      for (let i = 0; i < 6; i++) bidi.write({ data: Buffer.alloc(256 * 1024, 4) });
      const b = await got;
      assert.equal(b.status.code, grpc.status.RESOURCE_EXHAUSTED, `status: ${b.status.code} ${b.status.details}`);
      const cancelled = (): boolean => serverSaw.slice(before).some((s) => s.method === 'Bidi' && s.how === 'cancelled');
      for (let i = 0; i < 100 && !cancelled(); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(cancelled(), 'the upstream stream was reset');
    });

    test('the default body limit does not cut gRPC streams (only a route max-body-size does)', async () => {
      const c = clientFor(kind);
      const res = await new Promise<Msg>((resolve, reject) => {
        const w = c.ClientStream(md(), { deadline: Date.now() + 30_000 }, (err, r) => (err ? reject(err) : resolve(r!)));
        // 12 MiB in total: over limits.max-body-bytes (10 MiB by default).
        for (let i = 0; i < 12; i++) w.write({ data: Buffer.alloc(MiB, 5) });
        w.end();
      });
      assert.equal(Number(res.total), 12 * MiB);
    });

    test('proxy errors are gRPC-shaped: UNAVAILABLE, DEADLINE_EXCEEDED mid-stream, UNAUTHENTICATED, PERMISSION_DENIED', async () => {
      const c = clientFor(kind);
      const dead = await unary(c, {}, md('dead'));
      assert.equal(dead.err?.code, grpc.status.UNAVAILABLE, `connect failure: ${dead.err?.code} ${dead.err?.details}`);
      assert.match(dead.err!.details, /WEIR_ERR_UPSTREAM_CONNECT/);
      const slow = await unary(c, { delayMs: 3000 }, md('deadline'));
      assert.equal(slow.err?.code, grpc.status.DEADLINE_EXCEEDED, `route timeout: ${slow.err?.code} ${slow.err?.details}`);
      // The route timeout firing while a server stream is under way.
      const s = await collect(c.ServerStream({ data: Buffer.from('x'), count: 1000, delayMs: 20 }, md('deadline')));
      assert.ok(s.msgs.length > 0, 'messages flowed before the timeout');
      assert.equal(s.status.code, grpc.status.DEADLINE_EXCEEDED, `mid-stream: ${s.status.code} ${s.status.details}`);
      const unauth = await unary(c, {}, md(undefined, { 'x-test-reply': '401' }));
      assert.equal(unauth.err?.code, grpc.status.UNAUTHENTICATED);
      assert.equal(unauth.err?.details, 'denied by policy');
      const forbidden = await unary(c, {}, md(undefined, { 'x-test-reply': '403' }));
      assert.equal(forbidden.err?.code, grpc.status.PERMISSION_DENIED);
      const many: Record<string, string> = {};
      for (let i = 0; i < 150; i++) many[`x-m-${i}`] = 'v';
      const tooMany = await unary(c, {}, md(undefined, many));
      assert.equal(tooMany.err?.code, grpc.status.RESOURCE_EXHAUSTED, `too many headers: ${tooMany.err?.code} ${tooMany.err?.details}`);
      assert.match(tooMany.err!.details, /WEIR_ERR_HEADERS_TOO_LARGE/);
      const custom = await unary(c, {}, md(undefined, { 'x-test-reply': 'grpc-8' }));
      assert.equal(custom.err?.code, grpc.status.RESOURCE_EXHAUSTED, 'a local reply may carry grpc-status');
      assert.equal(custom.err?.details, 'from a filter');
    });
  });
}
