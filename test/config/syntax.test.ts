import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseKdl } from '../../host/src/config/kdl.ts';
import { bad, ok, expectDiag } from './helpers.ts';

test('KDL v2 syntax is accepted', async () => {
  const c = await ok(`listener "l" {
    address "127.0.0.1:0"
    tls { cert-file #"c"#; key-file "k"; client-auth #false; }
}
observability { metrics { enabled #false; }; logging { access-log #false; }; }
`);
  assert.equal(c.listeners[0]!.tls!.certFile.endsWith('/c'), true);
  assert.equal(c.listeners[0]!.tls!.clientAuth, false);
  assert.equal(c.observability.metrics.enabled, false);
  assert.equal(c.observability.logging.accessLog, false);
});

test('KDL v1 syntax (bare true, r"raw") is accepted', async () => {
  const c = await ok(`observability { metrics { enabled false; }; logging { access-log r"C:\\logs\\a.log"; }; }
route "r" { builtin-handler "health"; policies { websocket true; }; }
`);
  assert.equal(c.observability.metrics.enabled, false);
  assert.equal(c.observability.logging.accessLog, 'C:\\logs\\a.log');
  assert.equal(c.routes[0]!.policies.allowWebsocket, true);
});

test('parseKdl keeps locations of nodes, arguments and properties', () => {
  const r = parseKdl('a 1 "two"\n  b k=#true {\n    c\n  }\n', 'x.kdl');
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.equal(r.version, 2);
  const [a, b] = r.nodes;
  assert.deepEqual(a!.args, [1, 'two']);
  assert.deepEqual(a!.argLocs!.map((l) => [l.line, l.column]), [[1, 3], [1, 5]]);
  assert.deepEqual([b!.loc.line, b!.loc.column], [2, 3]);
  assert.deepEqual(b!.props, { k: true });
  assert.deepEqual([b!.propLocs!.k!.line, b!.propLocs!.k!.column], [2, 7]);
  assert.deepEqual([b!.children[0]!.name, b!.children[0]!.loc.line, b!.children[0]!.loc.column], ['c', 3, 5]);
  const v1 = parseKdl('a true\n  b null\n', 'x.kdl');
  assert.ok(v1.ok && v1.version === 1);
  if (v1.ok) assert.deepEqual([v1.nodes[1]!.args[0], v1.nodes[1]!.loc.line, v1.nodes[1]!.loc.column], [null, 2, 3]);
});

test('a v1 file with a real error is reported with the v1 parser\'s error', async () => {
  // Bare `true` makes v2 fail on line 1; the real mistake is the unclosed block on line 3.
  const diags = await bad(`cache { enabled true; }
limits {
    max-header-count 10 }}
`);
  assert.equal(diags[0]!.code, 'WEIR_ERR_CONFIG_SYNTAX');
  assert.equal(diags[0]!.loc!.line, 3);
  assert.match(diags[0]!.message, /KDL v1/);
});

test('a v2 file with a real error is reported with the v2 parser\'s error', async () => {
  const diags = await bad(`cache { enabled #true; }
limits {
    max-header-count 10 }}
`);
  assert.equal(diags[0]!.loc!.line, 3);
  assert.match(diags[0]!.message, /KDL v2/);
});

test('syntax error location in a list literal', async () => {
  const diags = await bad('route "r" {\n    filters ["a", "b"]\n}\n');
  const d = expectDiag(diags, 'WEIR_ERR_CONFIG_SYNTAX', 2, 13);
  assert.match(d.message, /no list syntax/);
});
