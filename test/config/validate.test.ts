import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bad, ok, expectDiag } from './helpers.ts';
import { formatDiagnostics } from '../../host/src/config/load.ts';

test('unknown key: did-you-mean at the exact line:column', async () => {
  const diags = await bad(`routes {
    route "api" {
        matches {
            path-prefx "/api"
        }
        upstream "u"
    }
}
upstream "u" { target "127.0.0.1:1"; }
`);
  const d = expectDiag(diags, 'WEIR_ERR_CONFIG_UNKNOWN_KEY', 4, 13);
  assert.equal(d.hint, 'did you mean `path-prefix`?');
  assert.equal(diags.length, 1);
  assert.match(formatDiagnostics(diags), /inline\.kdl:4:13: error WEIR_ERR_CONFIG_UNKNOWN_KEY: unknown key `path-prefx` in `matches` \(did you mean `path-prefix`\?\)$/);
});

test('unknown top-level key, property and enum value suggest the closest name', async () => {
  const diags = await bad(`listners {}
upstream "u" {
    target "127.0.0.1:1" wieght=2
    load-balancing "round_robbin"
}
`);
  assert.equal(expectDiag(diags, 'WEIR_ERR_CONFIG_UNKNOWN_KEY', 1, 1).hint, 'did you mean `listeners`?');
  assert.equal(expectDiag(diags, 'WEIR_ERR_CONFIG_UNKNOWN_KEY', 3, 33).hint, 'did you mean `weight`?');
  assert.equal(expectDiag(diags, 'WEIR_ERR_CONFIG_VALUE', 4, 20).hint, 'did you mean `round_robin`?');
});

test('wrong types are reported at the value, all of them', async () => {
  const diags = await bad(`system {
    worker-threads "4"
    max-connections 1.5
}
listener "l" {
    address 8080
    request-timeout-secs "30"
    tls { cert-file "a"; key-file "b"; client-auth "true"; }
}
limits { max-body-bytes "lots"; }
`);
  expectDiag(diags, 'WEIR_ERR_CONFIG_TYPE', 2, 20);
  expectDiag(diags, 'WEIR_ERR_CONFIG_TYPE', 3, 21);
  assert.equal(expectDiag(diags, 'WEIR_ERR_CONFIG_TYPE', 6, 13).hint, 'quote it: "8080"');
  expectDiag(diags, 'WEIR_ERR_CONFIG_TYPE', 7, 26);
  assert.equal(expectDiag(diags, 'WEIR_ERR_CONFIG_TYPE', 8, 52).hint, 'drop the quotes: true');
  expectDiag(diags, 'WEIR_ERR_CONFIG_TYPE', 10, 25);
});

test('argument counts, ranges and children where none are allowed', async () => {
  const diags = await bad(`system {
    worker-threads 1 2
    max-connections 0
}
limits { http2 { initial-window-size 4294967296; }; }
routes { route "r" { upstream "u" { x 1; }; builtin-handler "health"; }; }
`);
  expectDiag(diags, 'WEIR_ERR_CONFIG_TYPE', 2, 22);
  expectDiag(diags, 'WEIR_ERR_CONFIG_VALUE', 3, 21);
  expectDiag(diags, 'WEIR_ERR_CONFIG_VALUE', 5, 38);
  expectDiag(diags, 'WEIR_ERR_CONFIG_TYPE', 6, 37);
});

test('required keys', async () => {
  const diags = await bad(`filters {
    filter "f" { max-rps 3; }
    filter "g" { type "rate-limit"; }
}
plugin "p" {}
upstream "empty" {}
`);
  assert.ok(diags.some((d) => d.code === 'WEIR_ERR_CONFIG_MISSING' && /needs `type`/.test(d.message) && d.loc?.line === 2));
  assert.ok(diags.some((d) => d.code === 'WEIR_ERR_CONFIG_MISSING' && /needs `max-rps`/.test(d.message) && d.loc?.line === 3));
  assert.ok(diags.some((d) => d.code === 'WEIR_ERR_CONFIG_MISSING' && /needs `path`/.test(d.message) && d.loc?.line === 5));
  assert.ok(diags.some((d) => d.code === 'WEIR_ERR_CONFIG_MISSING' && /no `target`/.test(d.message) && d.loc?.line === 6));
});

test('filter keys depend on the filter type', async () => {
  const diags = await bad(`filter "g" {
    type "geo"
    database-path "x.mmdb"
    max-rps 10
}
filter "t" { type "geoo"; }
`);
  expectDiag(diags, 'WEIR_ERR_CONFIG_UNKNOWN_KEY', 4, 5);
  assert.equal(expectDiag(diags, 'WEIR_ERR_CONFIG_VALUE', 6, 19).hint, 'did you mean `geo`?');
});

test('missing references, with did-you-mean', async () => {
  const diags = await bad(`upstreams { upstream "backend" { target "127.0.0.1:9000"; }; }
filters { filter "auth" { type "wasm"; plugin "auht"; }; }
plugins { plugin "auth" { path "auth.wasm"; }; }
routes {
    route "r" {
        upstream "backnd"
        filters "auth" "nope"
    }
}
`);
  assert.equal(expectDiag(diags, 'WEIR_ERR_CONFIG_REFERENCE', 2, 47).hint, 'did you mean `auth`?');
  assert.equal(expectDiag(diags, 'WEIR_ERR_CONFIG_REFERENCE', 6, 18).hint, 'did you mean `backend`?');
  const nope = expectDiag(diags, 'WEIR_ERR_CONFIG_REFERENCE', 7, 24);
  assert.equal(nope.hint, 'defined: `auth`');
});

test('duplicate names and repeated keys', async () => {
  const diags = await bad(`upstream "a" { target "127.0.0.1:1"; }
upstreams {
    upstream "a" { target "127.0.0.1:2"; }
}
listener "x" { address "0.0.0.0:80"; }
listener "y" {
    address "0.0.0.0:80"
    protocol "http"
    protocol "h2c"
}
limits {}
limits {}
`);
  const dup = expectDiag(diags, 'WEIR_ERR_CONFIG_DUPLICATE', 3, 14);
  assert.match(dup.hint ?? '', /inline\.kdl:1:1/);
  expectDiag(diags, 'WEIR_ERR_CONFIG_DUPLICATE', 7, 13);
  expectDiag(diags, 'WEIR_ERR_CONFIG_DUPLICATE', 9, 5);
  expectDiag(diags, 'WEIR_ERR_CONFIG_DUPLICATE', 12, 1);
});

test('regexes must compile and addresses must parse', async () => {
  const diags = await bad(`route "r" {
    matches { path-regex "^/a(" ; header name="x" regex="[" ; }
    builtin-handler "status"
}
listener "a" { address "localhost"; }
listener "b" { address "::1:80"; }
listener "c" { address "[::1]:70000"; }
upstream "u" { target "10.0.0.1:0"; }
`);
  expectDiag(diags, 'WEIR_ERR_CONFIG_VALUE', 2, 26);
  expectDiag(diags, 'WEIR_ERR_CONFIG_VALUE', 2, 57);
  expectDiag(diags, 'WEIR_ERR_CONFIG_VALUE', 5, 24);
  expectDiag(diags, 'WEIR_ERR_CONFIG_VALUE', 6, 24);
  expectDiag(diags, 'WEIR_ERR_CONFIG_VALUE', 7, 24);
  expectDiag(diags, 'WEIR_ERR_CONFIG_VALUE', 8, 23);
});

test('addresses: host:port, [v6]:port and port 0 are accepted', async () => {
  const c = await ok(`listener "a" { address "0.0.0.0:0"; }
listener "b" { address "[::1]:8443"; tls { cert-file "c"; key-file "k"; }; }
`);
  assert.deepEqual(c.listeners.map((l) => [l.host, l.port, l.protocol]), [['0.0.0.0', 0, 'http'], ['::1', 8443, 'https']]);
});

test('schema-version must be "1.0" or "1"', async () => {
  assert.equal((await ok('schema-version "1"')).schemaVersion, '1.0');
  assert.equal((await ok('schema-version "1.0"')).schemaVersion, '1.0');
  const diags = await bad('schema-version "2.0"\n');
  expectDiag(diags, 'WEIR_ERR_CONFIG_SCHEMA_VERSION', 1, 16);
});

test('file paths are checked and resolved against the config file', async () => {
  const diags = await bad(`listener "l" {
    protocol "https"
    tls { cert-file "files/server.crt"; key-file "files/missing.key"; }
}
`, {});
  const d = expectDiag(diags, 'WEIR_ERR_CONFIG_FILE', 3, 50);
  assert.match(d.hint ?? '', /fixtures\/config\/files\/missing\.key$/);
  assert.equal(diags.length, 1);
});

test('listener protocol and tls must agree', async () => {
  const diags = await bad(`listener "a" { protocol "https"; }
listener "b" { address "127.0.0.1:1"; protocol "http"; tls { cert-file "c"; key-file "k"; }; }
listener "c" { address "127.0.0.1:2"; tls { cert-file "c"; key-file "k"; client-auth true; }; }
`);
  expectDiag(diags, 'WEIR_ERR_CONFIG_MISSING', 1, 16);
  expectDiag(diags, 'WEIR_ERR_CONFIG_VALUE', 2, 39);
  expectDiag(diags, 'WEIR_ERR_CONFIG_MISSING', 3, 74);
});

test('env expansion: ${NAME}, ${NAME:-fallback}, missing', async () => {
  const text = `upstream "u" { target "\${HOST}:\${PORT:-8080}"; }
route "r" { upstream "u"; matches { header "x-key" "\${KEY}"; }; }
`;
  const c = await ok(text, { env: { HOST: '10.1.1.1', KEY: 'k1' } });
  assert.equal(c.upstreams.get('u')!.targets[0]!.address, '10.1.1.1:8080');
  assert.equal(c.routes[0]!.matches[0]!.headers[0]!.value, 'k1');
  const diags = await bad(text, { env: { HOST: 'h' } });
  const d = expectDiag(diags, 'WEIR_ERR_CONFIG_MISSING', 2, 52);
  assert.match(d.message, /`KEY`/);
});

test('all diagnostics are collected, sorted by position', async () => {
  const diags = await bad(`system { worker-thread 1; }
limits { max-header-count "x"; }
routes { route "r" { upstream "none"; }; }
`);
  assert.deepEqual(diags.map((d) => [d.loc?.line, d.code]), [
    [1, 'WEIR_ERR_CONFIG_UNKNOWN_KEY'],
    [2, 'WEIR_ERR_CONFIG_TYPE'],
    [3, 'WEIR_ERR_CONFIG_REFERENCE'],
  ]);
});
