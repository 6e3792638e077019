/**
 * health-check { type "grpc" }: Weir asks each target grpc.health.v1 Health/Check for the
 * configured service and sends traffic only to targets that answer SERVING.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startWeirWith } from '../helpers/weir.ts';
import { bad } from '../config/helpers.ts';

const fixture = (f: string): string => fileURLToPath(new URL(`../fixtures/grpc/${f}`, import.meta.url));
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync([fixture('echo.proto'), fixture('health.proto')], { longs: String, enums: String, defaults: true })) as unknown as {
  weirtest: { Echo: grpc.ServiceClientConstructor };
  grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
};

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A gRPC server named `id` whose health per service can be changed; counts health checks. */
async function server(id: string): Promise<{ port: number; status: Map<string, string>; checks: string[] }> {
  const status = new Map<string, string>();
  const checks: string[] = [];
  const s = new grpc.Server();
  s.addService(pkg.weirtest.Echo.service, {
    Unary: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { data: Buffer.from(id) }),
  });
  s.addService(pkg.grpc.health.v1.Health.service, {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      checks.push(call.request.service);
      const st = status.get(call.request.service);
      if (st === undefined) return cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' } as grpc.ServiceError);
      cb(null, { status: st });
    },
  });
  const port = await new Promise<number>((resolve, reject) => s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  cleanups.push(() => s.forceShutdown());
  return { port, status, checks };
}

test('grpc health checks: only targets whose service is SERVING get traffic, and that follows changes', async () => {
  const a = await server('a');
  const b = await server('b');
  a.status.set('weirtest.Echo', 'SERVING');
  b.status.set('weirtest.Echo', 'NOT_SERVING');
  const { weir } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; protocol "h2c"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "grpc"; } }
upstreams {
    upstream "grpc" {
        target "127.0.0.1:${a.port}"
        target "127.0.0.1:${b.port}"
        protocol "h2"
        health-check { type "grpc"; service "weirtest.Echo"; interval-secs 0.1; timeout-secs 1; healthy-threshold 1; unhealthy-threshold 1; }
    }
}`);
  cleanups.push(() => weir.close());
  const client = new pkg.weirtest.Echo(`127.0.0.1:${weir.address().port}`, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  const call = (): Promise<string> =>
    new Promise((resolve, reject) => (client as unknown as { Unary: (m: object, cb: (e: Error | null, r?: { data: Buffer }) => void) => void }).Unary({}, (e, r) => (e ? reject(e) : resolve(r!.data.toString()))));
  const servedBy = async (n: number): Promise<Set<string>> => {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) seen.add(await call());
    return seen;
  };
  const until = async (want: string): Promise<void> => {
    for (let i = 0; i < 100; i++) {
      const s = await servedBy(6);
      if (s.size === 1 && s.has(want)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`traffic never settled on ${want}`);
  };
  await until('a');
  assert.deepEqual([...(await servedBy(10))], ['a'], 'the NOT_SERVING target gets nothing');
  assert.ok(b.checks.includes('weirtest.Echo'), 'the configured service is asked for');
  b.status.set('weirtest.Echo', 'SERVING');
  a.status.delete('weirtest.Echo'); // NOT_FOUND: unhealthy too
  await until('b');
  assert.deepEqual([...(await servedBy(10))], ['b']);
});

test('health-check type "grpc" needs protocol "h2"', async () => {
  const diags = await bad(`
listeners { listener "main" { address "127.0.0.1:0"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "u"; } }
upstreams { upstream "u" { target "127.0.0.1:1"; health-check { type "grpc"; } } }`);
  assert.ok(diags.some((d) => d.code === 'WEIR_ERR_CONFIG_CONSTRAINT' && /protocol "h2"/.test(d.message)), JSON.stringify(diags));
});
