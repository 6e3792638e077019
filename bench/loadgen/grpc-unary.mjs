// Fixed-concurrency gRPC unary load (ghz-like): CONCURRENCY calls always in flight on one
// channel for SECONDS, 100-byte payloads. Prints one JSON line: calls/s, errors, latency.
//   node grpc-unary.mjs HOST:PORT CONCURRENCY SECONDS [WARMUP_SECONDS]
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const [target, concArg, secsArg, warmArg] = process.argv.slice(2);
const concurrency = Number(concArg);
const seconds = Number(secsArg);
const warmup = Number(warmArg ?? 1);
const proto = fileURLToPath(new URL('../../test/fixtures/grpc/echo.proto', import.meta.url));
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(proto, { longs: String }));
const client = new pkg.weirtest.Echo(target, grpc.credentials.createInsecure());
const data = Buffer.alloc(100, 'x');

let measuring = false;
let stopping = false;
let ok = 0;
let errors = 0;
const lat = [];
const one = () =>
  new Promise((resolve) => {
    const t0 = performance.now();
    client.Unary({ data }, (err) => {
      if (measuring) {
        if (err) errors++;
        else {
          ok++;
          lat.push(performance.now() - t0);
        }
      }
      resolve();
    });
  });
const worker = async () => {
  while (!stopping) await one();
};
const workers = Array.from({ length: concurrency }, worker);
await new Promise((r) => setTimeout(r, warmup * 1000));
measuring = true;
const t0 = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
measuring = false;
const elapsed = (performance.now() - t0) / 1000;
stopping = true;
await Promise.all(workers);
client.close();
lat.sort((a, b) => a - b);
const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : 0);
console.log(JSON.stringify({ callsPerSec: ok / elapsed, ok, errors, latencyMs: { p50: q(0.5), p90: q(0.9), p99: q(0.99) } }));
