/**
 * Active health checks in the standard gRPC health protocol: a unary call to
 * /grpc.health.v1.Health/Check with HealthCheckRequest { service }, healthy when the call ends
 * with grpc-status 0 and HealthCheckResponse.status is SERVING (1).
 */
import type { Dispatcher } from 'undici';

const PATH = '/grpc.health.v1.Health/Check';
const SERVING = 1;

/** HealthCheckRequest { string service = 1; } in one gRPC message frame (uncompressed). */
export function healthRequestFrame(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const msg = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** HealthCheckResponse.status (field 1, varint) from one gRPC message frame; undefined if absent. */
export function servingStatus(body: Buffer): number | undefined {
  if (body.length < 5 || body[0] !== 0) return undefined;
  const len = body.readUInt32BE(1);
  const msg = body.subarray(5, 5 + len);
  for (let i = 0; i < msg.length; ) {
    const key = msg[i++]!;
    const field = key >> 3;
    const wire = key & 7;
    if (wire !== 0) return undefined; // HealthCheckResponse has only the varint status
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = msg[i++];
      if (b === undefined) return undefined;
      v |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
    }
    if (field === 1) return v;
  }
  return 0; // proto3 default: UNKNOWN
}

/** One grpc.health.v1 check over `pool` (an HTTP/2 dispatcher). */
export async function grpcHealthProbe(pool: Dispatcher, service: string, timeoutMs: number): Promise<boolean> {
  const res = await pool.request({
    method: 'POST',
    path: PATH,
    headers: { 'content-type': 'application/grpc', te: 'trailers', 'user-agent': 'weir-health-check' },
    body: healthRequestFrame(service),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  const status = res.trailers['grpc-status'] ?? res.headers['grpc-status'];
  return res.statusCode === 200 && status === '0' && servingStatus(body) === SERVING;
}
