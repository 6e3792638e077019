/** Raw HTTP helpers for tests that need exact bytes. */
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
