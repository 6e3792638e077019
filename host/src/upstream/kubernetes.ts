/**
 * Kubernetes discovery: the EndpointSlices of a Service, by list then watch over the API's
 * HTTP interface. A watch that ends is resumed from the last resourceVersion; 410 Gone (that
 * version is too old) lists again. Credentials come from a kubeconfig file or, without one,
 * the pod's service account (KUBERNETES_SERVICE_HOST/PORT, token and CA files).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request, type Dispatcher } from 'undici';
import { parse as parseYaml } from 'yaml';
import type { DiscoveryConfig } from '../config/types.ts';

type KubernetesConfig = Extract<DiscoveryConfig, { kind: 'kubernetes' }>;

/** Where a pod's service account is mounted; WEIR_SERVICE_ACCOUNT_DIR points elsewhere. */
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

interface Api {
  readonly server: string;
  readonly headers: Record<string, string>;
  readonly dispatcher: Dispatcher | undefined;
  readonly namespace: string;
}

interface Slice {
  readonly metadata?: { readonly name?: string; readonly resourceVersion?: string };
  readonly ports?: ReadonlyArray<{ readonly name?: string; readonly port?: number }> | null;
  readonly endpoints?: ReadonlyArray<{ readonly addresses?: readonly string[]; readonly conditions?: { readonly ready?: boolean | null } }> | null;
}

/** A Status answer or event: `code` 410 means the resourceVersion is gone. */
class Gone extends Error {}
/** An ERROR event other than 410. */
class WatchFailed extends Error {}

/** The API server, credentials and default namespace, from `kubeconfig` or in-cluster files. */
export async function kubernetesApi(d: KubernetesConfig): Promise<Api> {
  if (d.kubeconfig !== undefined) return fromKubeconfig(d.kubeconfig);
  const host = process.env['KUBERNETES_SERVICE_HOST'];
  const port = process.env['KUBERNETES_SERVICE_PORT'] ?? '443';
  if (!host) throw new Error('not in a cluster (KUBERNETES_SERVICE_HOST is not set) and no `kubeconfig` given');
  const dir = process.env['WEIR_SERVICE_ACCOUNT_DIR'] ?? SERVICE_ACCOUNT_DIR;
  const token = (await readFile(join(dir, 'token'), 'utf8')).trim();
  const ca = await readFile(join(dir, 'ca.crt'), 'utf8');
  const namespace = await readFile(join(dir, 'namespace'), 'utf8').then((s) => s.trim(), () => 'default');
  const h = host.includes(':') ? `[${host}]` : host;
  return { server: `https://${h}:${port}`, headers: { authorization: `Bearer ${token}` }, dispatcher: new Agent({ connect: { ca } }), namespace };
}

async function fromKubeconfig(path: string): Promise<Api> {
  const doc = parseYaml(await readFile(path, 'utf8')) as Record<string, unknown> | null;
  const named = (list: unknown, name: unknown, what: string): Record<string, unknown> => {
    const e = Array.isArray(list) ? (list as Array<Record<string, unknown>>).find((x) => x?.['name'] === name) : undefined;
    if (!e) throw new Error(`${path}: no ${what} \`${String(name)}\``);
    return (e[what] ?? {}) as Record<string, unknown>;
  };
  const context = named(doc?.['contexts'], doc?.['current-context'], 'context');
  const cluster = named(doc?.['clusters'], context['cluster'], 'cluster');
  const user = context['user'] !== undefined ? named(doc?.['users'], context['user'], 'user') : {};
  const server = cluster['server'];
  if (typeof server !== 'string') throw new Error(`${path}: the cluster has no \`server\``);
  const pem = async (data: unknown, file: unknown): Promise<string | undefined> =>
    typeof data === 'string' ? Buffer.from(data, 'base64').toString('utf8') : typeof file === 'string' ? readFile(file, 'utf8') : undefined;
  const ca = await pem(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = await pem(user['client-certificate-data'], user['client-certificate']);
  const key = await pem(user['client-key-data'], user['client-key']);
  const token = typeof user['token'] === 'string' ? user['token'] : typeof user['tokenFile'] === 'string' ? (await readFile(user['tokenFile'], 'utf8')).trim() : undefined;
  const insecure = cluster['insecure-skip-tls-verify'] === true;
  const tls = server.startsWith('https:');
  return {
    server,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    dispatcher: tls ? new Agent({ connect: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), rejectUnauthorized: !insecure } }) : undefined,
    namespace: typeof context['namespace'] === 'string' ? context['namespace'] : 'default',
  };
}

/** Ready endpoints' addresses at the Service port named `portName` (or the slice's first). */
function targetsOf(slices: ReadonlyMap<string, Slice>, portName: string | undefined): Array<{ address: string; weight: number }> {
  const out = new Map<string, { address: string; weight: number }>();
  for (const s of slices.values()) {
    const port = (s.ports ?? []).find((p) => portName === undefined || p.name === portName)?.port;
    if (!port) continue;
    for (const e of s.endpoints ?? []) {
      if (e.conditions?.ready === false) continue;
      for (const a of e.addresses ?? []) {
        const address = a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`;
        out.set(address, { address, weight: 1 });
      }
    }
  }
  return [...out.values()];
}

/** List, then watch until stopped; `record` gets each changed set. */
export async function kubernetesLoop(
  d: KubernetesConfig,
  signal: AbortSignal,
  stopped: () => boolean,
  record: (t: Array<{ address: string; weight: number }>) => void,
  failed: (e: Error) => void,
  settle: () => void,
): Promise<void> {
  let api: Api | undefined;
  let version: string | undefined;
  const slices = new Map<string, Slice>();
  const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
  const publish = (): void => {
    const t = targetsOf(slices, d.portName);
    if (t.length === 0) failed(new Error(`no ready endpoint of service ${d.service}`));
    else record(t);
  };
  while (!stopped()) {
    try {
      api ??= await kubernetesApi(d);
      const ns = d.namespace ?? api.namespace;
      const base = new URL(`/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/endpointslices`, api.server);
      base.searchParams.set('labelSelector', `kubernetes.io/service-name=${d.service}`);
      const opts = { signal, headers: { ...api.headers, accept: 'application/json' }, ...(api.dispatcher ? { dispatcher: api.dispatcher } : {}) };
      if (version === undefined) {
        const r = await request(base, { ...opts, headersTimeout: 10_000, bodyTimeout: 30_000 });
        const text = await r.body.text();
        if (r.statusCode !== 200) throw new Error(`Kubernetes answered ${r.statusCode} to the list: ${text.slice(0, 200)}`);
        const list = JSON.parse(text) as { metadata?: { resourceVersion?: string }; items?: Slice[] };
        slices.clear();
        for (const s of list.items ?? []) slices.set(s.metadata?.name ?? '', s);
        version = list.metadata?.resourceVersion ?? '0';
        publish();
        settle();
      }
      const w = new URL(base);
      w.searchParams.set('watch', '1');
      w.searchParams.set('resourceVersion', version);
      w.searchParams.set('allowWatchBookmarks', 'true');
      w.searchParams.set('timeoutSeconds', String(Math.ceil(d.refreshMs / 1000)));
      const r = await request(w, { ...opts, headersTimeout: 10_000, bodyTimeout: d.refreshMs + 30_000 });
      if (r.statusCode === 410) {
        await r.body.dump();
        throw new Gone('410 Gone');
      }
      if (r.statusCode !== 200) throw new Error(`Kubernetes answered ${r.statusCode} to the watch: ${(await r.body.text()).slice(0, 200)}`);
      const began = Date.now();
      let rest = '';
      try {
        for await (const chunk of r.body) {
          rest += chunk.toString();
          let nl: number;
          while ((nl = rest.indexOf('\n')) >= 0) {
            const line = rest.slice(0, nl).trim();
            rest = rest.slice(nl + 1);
            if (!line) continue;
            const ev = JSON.parse(line) as { type?: string; object?: Slice & { code?: number; message?: string } };
            const o = ev.object ?? {};
            if (ev.type === 'ERROR') {
              if (o.code === 410) throw new Gone(o.message ?? '410 Gone');
              throw new WatchFailed(`watch error ${o.code ?? ''}: ${o.message ?? ''}`);
            }
            if (o.metadata?.resourceVersion) version = o.metadata.resourceVersion;
            if (ev.type === 'BOOKMARK') continue;
            const name = o.metadata?.name ?? '';
            if (ev.type === 'DELETED') slices.delete(name);
            else if (ev.type === 'ADDED' || ev.type === 'MODIFIED') slices.set(name, o);
            else continue;
            publish();
          }
        }
      } catch (err) {
        if (err instanceof Gone || err instanceof WatchFailed || err instanceof SyntaxError || stopped()) throw err;
        // The server dropped the watch: resume from `version` like an ended one.
      }
      // The watch ended (timeoutSeconds, or dropped): resume from `version`, at most once a second.
      if (Date.now() - began < 1_000) await pause(1_000);
    } catch (err) {
      if (stopped()) break;
      if (err instanceof Gone) {
        // Too old to resume: list again at once.
        version = undefined;
        continue;
      }
      failed(err as Error);
      settle();
      await pause(Math.min(d.refreshMs, 5_000));
    }
  }
}
