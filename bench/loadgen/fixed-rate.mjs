// Open-loop fixed-rate load generator (wrk2 is not in Debian). Requests are dispatched on a
// schedule whether or not earlier ones returned: when every connection is busy they wait in
// our queue, and that wait counts in their latency (no coordinated omission).
// Raw sockets and a minimal HTTP/1.1 response parser, because a general client (undici)
// costs too much CPU to hold 10k+ req/s on a core shared with the origin.
// Usage: node fixed-rate.mjs URL RATE SECONDS CONNECTIONS  → one JSON line on stdout.
import net from 'node:net';

const [url, rateArg, secsArg, connsArg] = process.argv.slice(2);
const rate = Number(rateArg);
const secs = Number(secsArg);
const nConns = Number(connsArg);
const u = new URL(url);
const port = Number(u.port || 80);
const reqBytes = Buffer.from(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: weir-bench\r\n\r\n`, 'latin1');
// Unrecorded warm-up at the same rate, so JIT and connection set-up stay out of the numbers.
const warmSecs = Math.min(1, secs / 2);
const total = Math.max(1, Math.round(rate * secs));
const warmTotal = Math.round(rate * warmSecs);
const lat = new Float64Array(total).fill(NaN);
const lag = new Float64Array(total);
let errors = 0;
let non200 = 0;
let finished = 0;

/** Requests waiting for a free connection: [index, dispatch time]. */
const queue = [];
const idle = [];

function parseChunked(buf, from) {
  // Returns the end offset of a complete chunked body, or -1 if more bytes are needed.
  let p = from;
  for (;;) {
    const nl = buf.indexOf('\r\n', p, 'latin1');
    if (nl < 0) return -1;
    const size = parseInt(buf.toString('latin1', p, nl), 16);
    if (Number.isNaN(size)) throw new Error('bad chunk size');
    p = nl + 2;
    if (size === 0) {
      const end = buf.indexOf('\r\n\r\n', p - 2, 'latin1');
      return end < 0 ? -1 : end + 4;
    }
    if (buf.length < p + size + 2) return -1;
    p += size + 2;
  }
}

function connect() {
  const s = net.connect(port, u.hostname);
  s.setNoDelay(true);
  const c = { s, buf: Buffer.alloc(0), cur: -1, start: 0, open: false };
  s.on('connect', () => {
    c.open = true;
    next(c);
  });
  s.on('data', (d) => {
    c.buf = c.buf.length ? Buffer.concat([c.buf, d]) : d;
    for (;;) {
      const he = c.buf.indexOf('\r\n\r\n', 0, 'latin1');
      if (he < 0) return;
      const head = c.buf.toString('latin1', 0, he).toLowerCase();
      const status = Number(head.slice(9, 12));
      const m = /\r\ncontent-length:\s*(\d+)/.exec(head);
      let end;
      if (m) end = he + 4 + Number(m[1]);
      else if (/\r\ntransfer-encoding:[^\r]*chunked/.test(head)) end = parseChunked(c.buf, he + 4);
      else end = he + 4; // 204/304-style: no body
      if (end < 0 || c.buf.length < end) return;
      c.buf = c.buf.subarray(end);
      done(c, status);
      if (/\r\nconnection:\s*close/.test(head)) {
        c.s.destroy();
        return;
      }
    }
  });
  const lost = () => {
    if (c.cur >= 0) {
      errors++;
      count(c.cur);
      c.cur = -1;
    }
    c.open = false;
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
    if (!ended) setTimeout(connect, 10);
  };
  s.on('error', () => {});
  s.on('close', lost);
  return c;
}

function count(i) {
  if (i >= warmTotal && ++finished === total) end();
}

function done(c, status) {
  const i = c.cur;
  c.cur = -1;
  if (i >= warmTotal) {
    lat[i - warmTotal] = performance.now() - c.start;
    if (status !== 200) non200++;
  }
  count(i);
  next(c);
}

function next(c) {
  const q = queue.shift();
  if (!q) {
    idle.push(c);
    return;
  }
  c.cur = q[0];
  c.start = q[1];
  c.s.write(reqBytes);
}

let sent = 0;
let t0 = 0;
function tick() {
  const now = performance.now();
  const due = Math.min(warmTotal + total, Math.floor(((now - t0) * rate) / 1000) + 1);
  while (sent < due) {
    const i = sent++;
    if (i >= warmTotal) lag[i - warmTotal] = now - (t0 + (i * 1000) / rate);
    const c = idle.pop();
    if (c) {
      c.cur = i;
      c.start = now;
      c.s.write(reqBytes);
    } else queue.push([i, now]);
  }
  if (sent < warmTotal + total) setTimeout(tick, 1);
}

let ended = false;
function end() {
  if (ended) return;
  ended = true;
  const elapsed = (performance.now() - t0) / 1000 - warmSecs;
  const ok = Array.from(lat).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const lags = Array.from(lag.subarray(0, Math.max(0, sent - warmTotal))).sort((a, b) => a - b);
  const pct = (a, p) => (a.length ? a[Math.min(a.length - 1, Math.floor((a.length * p) / 100))] : NaN);
  process.stdout.write(
    JSON.stringify({
      targetRate: rate,
      achievedRate: ok.length / elapsed,
      sent: Math.max(0, sent - warmTotal),
      completed: ok.length,
      errors,
      non200,
      unfinished: total - finished,
      latencyMs: { p50: pct(ok, 50), p90: pct(ok, 90), p99: pct(ok, 99), p999: pct(ok, 99.9), max: ok.at(-1) ?? NaN },
      lagMs: { p50: pct(lags, 50), p99: pct(lags, 99) },
    }) + '\n',
  );
  process.exit(0);
}

for (let k = 0; k < nConns; k++) connect();
// Start the schedule once the connections are open (or after 1 s, whichever is first).
const ready = setInterval(() => {
  if (idle.length === nConns || performance.now() > 1000) {
    clearInterval(ready);
    t0 = performance.now();
    // Bounded: whatever has not finished 5 s after the last slot counts as unfinished.
    setTimeout(end, (warmSecs + secs + 5) * 1000).unref();
    tick();
  }
}, 5);
