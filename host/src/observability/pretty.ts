/**
 * `logging format "pretty"`: pino's JSON lines rewritten as one readable line each,
 * `2026-01-01T00:00:00.000Z INFO  listening listener=main address=127.0.0.1:8080`.
 * Meant for a terminal; `json` stays the format for log pipelines.
 */

interface LineSink {
  write(chunk: string): boolean;
  flushSync?(): void;
  flush?(cb?: (err?: Error) => void): void;
  end?(): void;
}

/** A pino destination that formats each line and hands it to `dest`. */
export function prettyDestination<T extends LineSink>(dest: T): LineSink {
  return {
    write(chunk: string): boolean {
      return dest.write(prettyLine(chunk));
    },
    flushSync: () => dest.flushSync?.(),
    flush: (cb) => (dest.flush ? dest.flush(cb) : cb?.()),
    end: () => dest.end?.(),
  };
}

/** One JSON log line as text; a line that is not JSON passes unchanged. */
export function prettyLine(chunk: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(chunk) as Record<string, unknown>;
  } catch {
    return chunk;
  }
  const { time, level, msg, service: _service, ...rest } = o;
  const extra = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `${String(time ?? '')} ${String(level ?? '').toUpperCase().padEnd(5)} ${String(msg ?? '')}${extra.length ? ` ${extra.join(' ')}` : ''}\n`;
}
