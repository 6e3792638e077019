// The Helm chart (deploy/helm/weir). helm is not installable offline here, so the templates
// are rendered by test/release/helm-render.ts (the Go-template subset the chart uses; it
// fails on anything else) and the output is parsed as YAML and checked field by field.
// The default `config` value is validated by Weir's own config loader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../host/src/config/load.ts';
import { ROOT } from '../../build/binary.ts';
import { tmpDir } from '../helpers/weir.ts';
import { ChartRenderer } from './helm-render.ts';

const CHART = join(ROOT, 'deploy', 'helm', 'weir');
const chartYaml = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { apiVersion: string; name: string; version: string; appVersion: string };
const defaults = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

type K8s = { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };

function merge(a: unknown, b: unknown): unknown {
  if (b === undefined) return a;
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
    for (const [k, v] of Object.entries(b)) out[k] = merge(out[k], v);
    return out;
  }
  return b;
}

function render(overrides: Record<string, unknown> = {}, release = 'edge'): { docs: K8s[]; renderer: ChartRenderer; files: Map<string, string> } {
  const dir = join(CHART, 'templates');
  const renderer = new ChartRenderer(readFileSync(join(dir, '_helpers.tpl'), 'utf8'));
  const root = {
    Values: merge(defaults, overrides),
    Chart: { Name: chartYaml.name, Version: chartYaml.version, AppVersion: chartYaml.appVersion },
    Release: { Name: release, Namespace: 'default', Service: 'Helm' },
  };
  const docs: K8s[] = [];
  const files = new Map<string, string>();
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml')).sort()) {
    const out = renderer.render(readFileSync(join(dir, f), 'utf8'), root);
    files.set(f, out);
    for (const d of parseAllDocuments(out)) {
      assert.deepEqual(d.errors, [], `${f}: ${d.errors.join('; ')}\n${out}`);
      const js = d.toJS() as K8s | null;
      if (js) docs.push(js);
    }
  }
  renderer.render(readFileSync(join(dir, 'NOTES.txt'), 'utf8'), root);
  return { docs, renderer, files };
}

const byKind = (docs: K8s[], kind: string): K8s | undefined => docs.find((d) => d.kind === kind);

test('Chart.yaml: apiVersion v2, appVersion follows package.json', () => {
  assert.equal(chartYaml.apiVersion, 'v2');
  assert.equal(chartYaml.name, 'weir');
  assert.equal(chartYaml.appVersion, pkg.version);
});

test('defaults render to a ConfigMap, Deployment, Service and PDB; optional objects stay off', () => {
  const { docs } = render();
  assert.deepEqual(docs.map((d) => d.kind).sort(), ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service']);
  for (const d of docs) {
    assert.equal(d.metadata.name, 'edge-weir');
    assert.equal(d.metadata.labels!['app.kubernetes.io/name'], 'weir');
    assert.equal(d.metadata.labels!['app.kubernetes.io/version'], pkg.version);
  }
  const dep = byKind(docs, 'Deployment')!;
  assert.equal(dep.spec.replicas, 2);
  assert.deepEqual(dep.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'weir', 'app.kubernetes.io/instance': 'edge' });
  assert.deepEqual(byKind(docs, 'Service')!.spec.selector, dep.spec.selector.matchLabels);
  assert.deepEqual(byKind(docs, 'PodDisruptionBudget')!.spec.selector.matchLabels, dep.spec.selector.matchLabels);
});

test('Deployment: non-root, read-only root FS with a writable /tmp, probes on the builtin routes', () => {
  const { docs } = render();
  const pod = byKind(docs, 'Deployment')!.spec.template.spec;
  const c = pod.containers[0];
  assert.equal(c.image, `weir:${pkg.version}`);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.notEqual(pod.securityContext.runAsUser, 0);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  assert.ok(c.volumeMounts.some((m: { name: string; mountPath: string }) => m.name === 'tmp' && m.mountPath === '/tmp'), 'the binary extracts its worker to /tmp');
  assert.ok(pod.volumes.some((v: { name: string; emptyDir?: unknown }) => v.name === 'tmp' && v.emptyDir));
  assert.ok(c.volumeMounts.some((m: { mountPath: string }) => m.mountPath === '/etc/weir'), 'config mounted where the image ENTRYPOINT reads it');
  assert.equal(c.ports[0].containerPort, 8080);
  assert.deepEqual(c.livenessProbe.httpGet, { path: '/_/health', port: 'http' });
  assert.deepEqual(c.readinessProbe.httpGet, { path: '/_/ready', port: 'http' });
  assert.ok(c.resources.requests.cpu && c.resources.limits.memory);
  assert.match(pod.containers[0].env.find((e: { name: string }) => e.name === 'TMPDIR').value, /^\/tmp$/);
  assert.match(byKind(docs, 'Deployment')!.spec.template.metadata.annotations['checksum/config'], /^[0-9a-f]{64}$/);
});

test('the default config is valid Weir config, listens on containerPort and serves the probe paths', async () => {
  const { docs } = render();
  const kdl = byKind(docs, 'ConfigMap')!.data!['weir.kdl']!;
  assert.equal(kdl.trim(), String(defaults['config']).trim());
  const file = join(tmpDir(), 'weir.kdl');
  writeFileSync(file, kdl);
  const res = await loadConfig(file);
  assert.ok(res.ok, JSON.stringify(!res.ok && res.diagnostics));
  const c = res.config;
  assert.ok(c.listeners.some((l) => String((l as { address: unknown }).address).endsWith(':8080')));
  const builtin = (path: string): string | undefined => c.routes.find((r) => r.matches.some((m) => m.paths.includes(path)))?.builtinHandler;
  assert.equal(builtin('/_/health'), 'health');
  assert.equal(builtin('/_/ready'), 'ready');
  assert.equal(builtin('/_/metrics'), 'metrics');
});

test('everything on: HPA replaces replicas, TLS Secret mounted, ServiceMonitor scrapes the metrics route', () => {
  const { docs } = render({
    autoscaling: { enabled: true, maxReplicas: 7 },
    tls: { enabled: true, cert: 'CERT', key: 'KEY' },
    serviceMonitor: { enabled: true, labels: { release: 'prom' } },
    podAnnotations: { team: 'edge' },
    env: [{ name: 'WEIR_ZONE', value: 'eu-1a' }],
    nodeSelector: { pool: 'edge' },
  });
  assert.deepEqual(docs.map((d) => d.kind).sort(), ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Secret', 'Service', 'ServiceMonitor']);
  const dep = byKind(docs, 'Deployment')!;
  assert.equal(dep.spec.replicas, undefined, 'the HPA owns the replica count');
  const hpa = byKind(docs, 'HorizontalPodAutoscaler')!;
  assert.equal(hpa.spec.maxReplicas, 7);
  assert.equal(hpa.spec.scaleTargetRef.name, dep.metadata.name);
  const secret = byKind(docs, 'Secret')! as K8s & { type: string };
  assert.equal(secret.type, 'kubernetes.io/tls');
  assert.equal(Buffer.from(secret.data!['tls.crt']!, 'base64').toString(), 'CERT');
  const pod = dep.spec.template.spec;
  assert.equal(pod.volumes.find((v: { name: string }) => v.name === 'tls').secret.secretName, secret.metadata.name);
  assert.equal(pod.nodeSelector.pool, 'edge');
  assert.equal(dep.spec.template.metadata.annotations.team, 'edge');
  assert.ok(pod.containers[0].env.some((e: { name: string }) => e.name === 'WEIR_ZONE'));
  const sm = byKind(docs, 'ServiceMonitor')!;
  assert.equal(sm.metadata.labels!['release'], 'prom');
  assert.deepEqual(sm.spec.endpoints[0], { port: 'http', path: '/_/metrics', interval: '30s' });
});

test('an existing TLS secret is used as is; tls without cert or secret fails to render', () => {
  const { docs } = render({ tls: { enabled: true, existingSecret: 'my-certs' } });
  assert.equal(byKind(docs, 'Secret'), undefined);
  assert.equal(byKind(docs, 'Deployment')!.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'tls').secret.secretName, 'my-certs');
  assert.throws(() => render({ tls: { enabled: true } }), /tls\.cert is required/);
});

test('names: release containing the chart name, and fullnameOverride', () => {
  assert.equal(render({}, 'weir-prod').docs[0]!.metadata.name, 'weir-prod');
  assert.equal(render({ fullnameOverride: 'gw' }).docs[0]!.metadata.name, 'gw');
});

test('every .Values path the templates read is declared in values.yaml (a typo would render empty)', () => {
  const { renderer } = render({ autoscaling: { enabled: true }, tls: { enabled: true, cert: 'c', key: 'k' }, serviceMonitor: { enabled: true } });
  for (const path of renderer.valuePaths) {
    const v = path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' && k in o ? (o as Record<string, unknown>)[k] : Symbol.for('missing')), defaults);
    assert.notEqual(v, Symbol.for('missing'), `.Values.${path} is not in values.yaml`);
  }
  assert.ok(renderer.valuePaths.size > 30, `saw ${renderer.valuePaths.size} paths`);
});
