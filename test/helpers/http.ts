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

/** The parts of a multipart/byteranges body: each part's Content-Range and bytes. */
export function byteranges(body: Buffer, contentType: string): Array<{ range: string; type: string | undefined; data: string }> {
  const m = /boundary=([^;\s]+)/.exec(contentType);
  if (!m) throw new Error(`no boundary in ${contentType}`);
  const delim = `\r\n--${m[1]}`;
  const text = body.toString('latin1');
  if (!text.endsWith(`${delim}--\r\n`)) throw new Error('multipart body does not end with the closing delimiter');
  return text.slice(0, -(delim.length + 4)).split(delim).slice(1).map((part) => {
    const end = part.indexOf('\r\n\r\n');
    const head = part.slice(0, end).toLowerCase();
    return { range: /content-range: ([^\r\n]+)/.exec(head)?.[1] ?? '', type: /content-type: ([^\r\n]+)/.exec(head)?.[1], data: part.slice(end + 4) };
  });
}
