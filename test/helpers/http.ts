/** HTTP helpers for tests: raw bytes, and reading Weir's JSON error bodies. */
import net from 'node:net';

/** Sends raw bytes, returns everything the server sent until it closed (or timeout). */
export function rawRequest(port: number, bytes: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.setTimeout(timeoutMs, () => s.destroy());
    s.write(bytes);
  });
}

/** The `error.code` of a Weir JSON error body, or undefined for any other body. */
export function errorCode(text: string): string | undefined {
  try {
    return (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}
