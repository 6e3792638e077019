// deploy/grafana/weir.json: every query parses as PromQL (Prometheus's own grammar,
// @prometheus-io/lezer-promql) and every metric it selects is one Weir exports (the registry
// docs/metrics.md is generated from), with the label names that metric has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parser } from '@prometheus-io/lezer-promql';
import { families, seriesNames, PLUGIN_DEFINED } from '../../build/metrics-doc.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: Array<{ expr: string; refId: string }>;
  gridPos: { h: number; w: number; x: number; y: number };
}

const dash = JSON.parse(readFileSync(`${ROOT}deploy/grafana/weir.json`, 'utf8')) as {
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query?: { query: string } | string }> };
};

/** Series name → the labels it may carry. */
function catalogue(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const f of families()) {
    for (const s of seriesNames(f)) {
      const labels = new Set([...(f.labelNames ?? []), 'thread', 'job', 'instance']);
      if (s.endsWith('_bucket')) labels.add('le');
      out.set(s, labels);
    }
  }
  for (const [n] of PLUGIN_DEFINED) out.set(n, new Set(['plugin', 'filter', 'decision']));
  return out;
}

/** Grafana's variables replaced by values PromQL accepts. */
function concrete(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__range|\$__interval/g, '5m').replace(/\$\w+/g, 'x');
}

/** Metric names and label names selected by `expr`, or the parse error's position. */
function selectors(expr: string): { metrics: Array<{ name: string; labels: string[] }>; error?: number } {
  const text = concrete(expr);
  const tree = parser.parse(text);
  const metrics: Array<{ name: string; labels: string[] }> = [];
  let error: number | undefined;
  tree.iterate({
    enter(n) {
      if (n.type.isError) error ??= n.from;
      if (n.name !== 'VectorSelector') return;
      const id = n.node.getChild('Identifier');
      const labels: string[] = [];
      const matchers = n.node.getChild('LabelMatchers');
      if (matchers) {
        for (let c = matchers.firstChild; c; c = c.nextSibling) {
          const l = c.getChild('LabelName');
          if (l) labels.push(text.slice(l.from, l.to));
        }
      }
      if (id) metrics.push({ name: text.slice(id.from, id.to), labels });
    },
  });
  return { metrics, error };
}

test('every Grafana query parses as PromQL and names metrics and labels that exist in the registry', () => {
  const known = catalogue();
  const queries = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
  assert.ok(queries.length >= 20, `the dashboard has ${queries.length} queries`);
  const problems: string[] = [];
  for (const q of queries) {
    const { metrics, error } = selectors(q.expr);
    if (error !== undefined) problems.push(`${q.panel}: PromQL syntax error at ${error}: ${q.expr}`);
    if (metrics.length === 0) problems.push(`${q.panel}: selects no metric: ${q.expr}`);
    for (const m of metrics) {
      const labels = known.get(m.name);
      if (!labels) problems.push(`${q.panel}: ${m.name} is not a metric Weir exports`);
      else for (const l of m.labels) if (!labels.has(l)) problems.push(`${q.panel}: ${m.name} has no label ${l}`);
    }
  }
  // The variables' label_values() queries too.
  for (const v of dash.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query!.query;
    const m = /^label_values\((\w+),\s*(\w+)\)$/.exec(q);
    if (!m) problems.push(`variable ${v.name}: ${q}`);
    else if (!known.get(m[1]!)?.has(m[2]!)) problems.push(`variable ${v.name}: ${m[1]} has no label ${m[2]}`);
  }
  assert.deepEqual(problems, []);
});

test('the checker itself refuses a misspelt metric, an unknown label and broken PromQL', () => {
  const known = catalogue();
  assert.equal(known.has('weir_request_total'), false);
  assert.deepEqual(selectors('sum(rate(weir_requests_total{route="a"}[5m]))').metrics, [{ name: 'weir_requests_total', labels: ['route'] }]);
  assert.equal(known.get('weir_requests_total')!.has('upstream'), false);
  assert.notEqual(selectors('sum(rate(weir_requests_total[5m])').error, undefined);
});

test('the dashboard covers rate, errors, latency, upstream health, plugins and reloads, in a grid without overlaps', () => {
  const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join('\n');
  for (const m of ['weir_requests_total', 'weir_errors_total', 'weir_request_duration_seconds_bucket', 'weir_upstream_target_healthy', 'weir_upstream_target_ejections_total', 'weir_plugin_calls_total', 'weir_plugin_errors_total', 'weir_config_reloads_total']) {
    assert.ok(exprs.includes(m), `no panel on ${m}`);
  }
  const ids = dash.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const cells = new Set<string>();
  for (const p of dash.panels) {
    const g = p.gridPos;
    assert.ok(g.x >= 0 && g.x + g.w <= 24, `${p.title} fits the 24-column grid`);
    for (let x = g.x; x < g.x + g.w; x++) {
      for (let y = g.y; y < g.y + g.h; y++) {
        assert.ok(!cells.has(`${x},${y}`), `${p.title} overlaps another panel at ${x},${y}`);
        cells.add(`${x},${y}`);
      }
    }
  }
});
