/**
 * Availability under slow and pipelining clients, Weir beside nginx: the four attacks of
 * test/edge/availability.test.ts (slowloris, slow body, slow read with slowhttptest; a
 * pipelining client) against each proxy in turn, each beside a normal load of 50 requests/s
 * from another client address, and a table of normal requests served with p50/p99 written
 * to docs/reliability.md. Every process started here is stopped by PID at the end.
 *
 *   node_modules/.bin/node bench/availability.ts [--seconds=8] [--no-docs] [--only=weir,nginx] [--attacks=slow-read,...]
 * (--only and --attacks print the rows and leave docs/ alone)
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ATTACKS, slowhttptestAvailable, startOriginProcess, underAttack, type AttackKind } from '../test/helpers/attacks.ts';
import { freePort, runHarness, start, stop, stopAll, waitFor200, type Started } from './lib/proc.ts';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = join(benchDir, '..');
const args = new Map<string, string | undefined>(process.argv.slice(2).map((a): [string, string | undefined] => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v]; }));
const normalSeconds = Number(args.get('seconds') ?? 8);
const writeDocs = !args.has('no-docs') && !args.has('only') && !args.has('attacks');
const onlyPeers = args.get('only')?.split(',');
const onlyAttacks = args.get('attacks')?.split(',');
const RATE = 50;
const SIZE = 500;
const loadAtStart = loadavg()[0]!.toFixed(1);

interface Peer {
  readonly id: string;
  readonly label: string;
  spawn(work: string, originPort: number): Promise<{ port: number; proc: Started }>;
}

const nginx: Peer = {
  id: 'nginx',
  label: 'nginx (defaults: request and response buffering, 60 s timeouts)',
  spawn: async (work, originPort) => {
    const port = await freePort();
    const conf = join(work, 'nginx.conf');
    writeFileSync(
      conf,
      `worker_processes 1;
master_process off;
daemon off;
pid ${work}/nginx.pid;
error_log ${work}/nginx-error.log error;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path ${work}/body;
    proxy_temp_path ${work}/proxy;
    fastcgi_temp_path ${work}/fastcgi;
    uwsgi_temp_path ${work}/uwsgi;
    scgi_temp_path ${work}/scgi;
    upstream origin { server 127.0.0.1:${originPort}; keepalive 128; }
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`,
    );
    const proc = start('nginx', 'nginx', ['-p', work, '-e', join(work, 'nginx-error.log'), '-c', conf]);
    return { port, proc };
  },
};

const weir: Peer = {
  id: 'weir',
  label: 'Weir (defaults)',
  spawn: async (work, originPort) => {
    const port = await freePort();
    const conf = join(work, 'weir.kdl');
    writeFileSync(
      conf,
      `schema-version "1.0"
system { worker-threads 1; }
listeners { listener "main" { address "127.0.0.1:${port}"; protocol "http"; } }
routes { route "all" { matches { path-prefix "/"; }; upstream "origin"; } }
upstreams { upstream "origin" { target "127.0.0.1:${originPort}"; } }
observability { logging { level "error"; access-log #false; } }
`,
    );
    const proc = start('weir', process.execPath, [join(root, 'host', 'bin', 'weir.ts'), 'run', '-c', conf]);
    return { port, proc };
  },
};

interface Cell {
  readonly peer: string;
  readonly attack: AttackKind;
  readonly description: string;
  readonly sent: number;
  readonly ok: number;
  readonly p50: number;
  readonly p99: number;
}

async function main(): Promise<void> {
  if (!slowhttptestAvailable()) throw new Error('slowhttptest is not installed (apt-get install slowhttptest)');
  const work = mkdtempSync(join(tmpdir(), 'weir-availability-'));
  const origin = await startOriginProcess();
  const cells: Cell[] = [];
  try {
    for (const peer of [weir, nginx].filter((p) => !onlyPeers || onlyPeers.includes(p.id))) {
      const { port, proc } = await peer.spawn(work, origin.port);
      try {
        await waitFor200(`http://127.0.0.1:${port}/warm`, proc, 20_000);
        for (const attack of ATTACKS.filter((a) => !onlyAttacks || onlyAttacks.includes(a))) {
          const r = await underAttack(attack, { host: '127.0.0.1', port }, { size: SIZE, seconds: normalSeconds + 7, bigPath: '/big', smallPath: '/small', rampMs: 3000, normalMs: normalSeconds * 1000, rate: RATE, normalPath: '/normal' });
          const cell: Cell = { peer: peer.id, attack, description: r.attack, sent: r.sent, ok: r.ok, p50: r.p50, p99: r.p99 };
          console.log(JSON.stringify(cell));
          cells.push(cell);
          // Let the attack's connections close before the next one starts.
          await new Promise((res) => setTimeout(res, 1000));
        }
      } finally {
        await stop(proc);
      }
    }
  } finally {
    await origin.stop();
    await stopAll();
  }
  const table = render(cells);
  console.log(table);
  if (writeDocs) writeReport(table);
}

function render(cells: readonly Cell[]): string {
  const lines = ['| Attack | What it does | Weir served | Weir p50 / p99 (ms) | nginx served | nginx p50 / p99 (ms) |', '| --- | --- | --- | --- | --- | --- |'];
  for (const attack of ATTACKS) {
    const w = cells.find((c) => c.peer === 'weir' && c.attack === attack);
    const n = cells.find((c) => c.peer === 'nginx' && c.attack === attack);
    const served = (c: Cell | undefined): string => (c ? `${c.ok} / ${c.sent}` : 'n/a');
    const lat = (c: Cell | undefined): string => (c ? `${c.p50} / ${c.p99}` : 'n/a');
    lines.push(`| ${attack} | ${w?.description ?? n?.description ?? ''} | ${served(w)} | ${lat(w)} | ${served(n)} | ${lat(n)} |`);
  }
  return lines.join('\n');
}

const BEGIN = '<!-- availability:begin -->';
const END = '<!-- availability:end -->';

/** Replaces the generated table in docs/reliability.md, keeping the text around it. */
function writeReport(table: string): void {
  const startLoad = loadAtStart;
  const file = join(root, 'docs', 'reliability.md');
  const text = readFileSync(file, 'utf8');
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a === -1 || b === -1) throw new Error(`${file} lacks the ${BEGIN} / ${END} markers`);
  const stamp = `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`npm run bench:availability\`: ${SIZE} attack connections (or pipelined requests), normal load ${RATE} requests/s for ${normalSeconds} s from 127.0.0.2, a normal request counts as served when it answers 200 within 2 s. Load average when it started: ${startLoad} (2 cores, shared).`;
  writeFileSync(file, `${text.slice(0, a + BEGIN.length)}\n${stamp}\n\n${table}\n${text.slice(b)}`);
}

runHarness(main);
