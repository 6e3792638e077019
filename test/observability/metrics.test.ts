// Per-target metrics, exemplars on the request latency histogram (OpenMetrics) and
// docs/metrics.md's catalogue, through a real proxy and real origins.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import { freePort } from '../helpers/servers.ts';
import { startOtlpReceiver } from '../helpers/otlp.ts';
import { families, seriesNames, PLUGIN_DEFINED } from '../../build/metrics-doc.ts';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function origin(handler?: Parameters<typeof startOrigin>[0]): Promise<Origin> {
  const o = await startOrigin(handler ?? ((_req, res) => res.writeHead(200).end('ok')));
  cleanups.push(() => o.close());
  return o;
}

async function scrape(url: string, accept?: string): Promise<{ type: string; text: string }> {
  const res = await request(`${url}/metrics`, { headers: accept ? { accept } : {} });
  return { type: String(res.headers['content-type']), text: await res.body.text() };
}

/** The value of one series line, by metric name and label subset. */
function value(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ')[1]);
  }
  return undefined;
}

const metricsRoute = 'route "metrics" { priority 100; matches { path "/metrics"; }; builtin-handler "metrics"; }';

test('per-target metrics: requests, errors by code, 5xx, latency, ejections, health and in-flight', async () => {
  let hold: (() => void) | undefined;
  const live = await origin((req, res) => {
    if (req.url === '/fail') return res.writeHead(503).end();
    if (req.url === '/hold') {
      hold = () => res.writeHead(200).end('held');
      return;
    }
    res.writeHead(200).end('ok');
  });
  const dead = await freePort();
  const { weir, url } = await startWeirWith(`listeners { listener "main" { address "127.0.0.1:0"; } }
routes {
    ${metricsRoute}
    route "api" { matches { path-prefix "/"; }; upstream "backend"; policies { retry { max-attempts 2; backoff-ms 1; retry-on "connect-failure"; } } }
}
upstreams { upstream "backend" { target "127.0.0.1:${dead}"; target "127.0.0.1:${live.port}"; } }
`);
  cleanups.push(() => weir.close());
  for (let i = 0; i < 12; i++) await (await request(`${url}/ok${i}`)).body.dump();
  await (await request(`${url}/fail`)).body.dump();
  const deadT = { upstream: 'backend', target: `127.0.0.1:${dead}` };
  const liveT = { upstream: 'backend', target: `127.0.0.1:${live.port}` };
  const held = request(`${url}/hold`);
  while (hold === undefined) await new Promise((r) => setTimeout(r, 10));
  const { text } = await scrape(url);
  hold();
  await (await held).body.dump();
  const deadErrors = value(text, 'weir_upstream_target_errors_total', { ...deadT, code: 'WEIR_ERR_UPSTREAM_CONNECT' })!;
  // Five connect failures in a row eject the dead target; after that it is not tried.
  assert.equal(deadErrors, 5);
  assert.equal(value(text, 'weir_upstream_target_requests_total', deadT), 5);
  assert.equal(value(text, 'weir_upstream_target_ejections_total', deadT), 1);
  assert.equal(value(text, 'weir_upstream_target_healthy', deadT), 0);
  assert.equal(value(text, 'weir_upstream_target_healthy', liveT), 1);
  assert.equal(value(text, 'weir_upstream_target_requests_total', liveT), 14, '12 ok, /fail and /hold');
  assert.equal(value(text, 'weir_upstream_target_errors_total', { ...liveT, code: '5xx' }), 1);
  assert.equal(value(text, 'weir_upstream_target_duration_seconds_count', liveT), 13, 'a head arrived for all but the held request');
  assert.equal(value(text, 'weir_upstream_target_in_flight', liveT), 1, 'the held request');
  assert.equal(value(text, 'weir_upstream_target_in_flight', deadT), 0);
  assert.equal(value(text, 'weir_upstream_target_ejections_total', liveT), undefined);
});

test('exemplars: an OpenMetrics scrape shows the trace id of a recorded request on its latency bucket; Prometheus text is unchanged by it', async () => {
  const o = await origin();
  const r = await startOtlpReceiver();
  cleanups.push(() => r.close());
  const { weir, url } = await startWeirWith(`listeners { listener "main" { address "127.0.0.1:0"; } }
routes { ${metricsRoute}
    route "api" { matches { path-prefix "/"; }; upstream "backend"; } }
upstreams { upstream "backend" { target "127.0.0.1:${o.port}"; } }
observability { tracing { endpoint "${r.url}"; } }
`);
  cleanups.push(() => weir.close());
  const traceId = '7bf92f3577b34da6a3ce929d0e0e4736';
  await (await request(`${url}/traced`, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })).body.dump();
  const om = await scrape(url, 'application/openmetrics-text; version=1.0.0');
  assert.match(om.type, /application\/openmetrics-text/);
  assert.ok(om.text.trimEnd().endsWith('# EOF'));
  const bucket = om.text.split('\n').find((l) => l.startsWith('weir_request_duration_seconds_bucket{') && l.includes('route="api"') && l.includes('# {'));
  assert.ok(bucket, 'a bucket of route api has an exemplar');
  assert.match(bucket, new RegExp(`# \\{trace_id="${traceId}"\\} [0-9.e-]+ [0-9.]+$`));
  assert.match(om.text, /^weir_requests_total\{[^}]*route="api"/m, 'counter samples keep their _total name');
  const prom = await scrape(url);
  assert.match(prom.type, /^text\/plain/);
  assert.ok(!prom.text.includes('trace_id'), 'no exemplars in Prometheus text');
  assert.match(prom.text, /^# TYPE weir_requests_total counter$/m, 'the OpenMetrics scrape renamed nothing');
  assert.match(prom.text, /^# TYPE weir_config_reloads_total counter$/m);
  // An unsampled request leaves no exemplar of its own.
  const before = om.text.match(/trace_id="/g)!.length;
  await (await request(`${url}/unsampled`, { headers: { traceparent: '00-8bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00' } })).body.dump();
  assert.ok(!(await scrape(url, 'application/openmetrics-text')).text.includes('8bf92f3577b34da6a3ce929d0e0e4736'));
  assert.ok(before >= 1);
});

test('docs/metrics.md lists every metric a running proxy exposes (cache, plugins, tracing included)', async () => {
  await buildFirstPartyPlugins();
  const o = await origin();
  const r = await startOtlpReceiver();
  cleanups.push(() => r.close());
  const { weir, url } = await startWeirWith(`listeners { listener "main" { address "127.0.0.1:0"; } }
filters { filter "limit" { type "rate-limit"; max-rps 1000; burst 1000; key "client-ip"; } }
routes { ${metricsRoute}
    route "api" { matches { path-prefix "/"; }; upstream "backend"; filters "limit"; policies { cache {} } } }
upstreams { upstream "backend" { target "127.0.0.1:${o.port}"; } }
observability { tracing { endpoint "${r.url}"; export-delay-ms 20; } }
`);
  cleanups.push(() => weir.close());
  await (await request(`${url}/a`)).body.dump();
  await r.until((s) => s.length > 0);
  await new Promise((res) => setTimeout(res, 100));
  const { text } = await scrape(url);
  const exposed = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
  const documented = new Set([...families().map((f) => f.name), ...PLUGIN_DEFINED.map(([n]) => n)]);
  for (const name of ['weir_cache_hits_total', 'weir_plugin_calls_total', 'weir_tracing_spans_exported_total', 'weir_upstream_target_healthy']) assert.ok(exposed.includes(name), `${name} is exposed`);
  assert.deepEqual(exposed.filter((n) => !documented.has(n)), [], 'exposed but missing from docs/metrics.md (build/metrics-doc.ts fullRegistry)');
  assert.ok(exposed.includes('weir_plugin_rate_limit_decisions_total'), 'the rate-limit plugin\'s own metric is there and documented');
  assert.ok(families().every((f) => seriesNames(f).length >= 1));
});
