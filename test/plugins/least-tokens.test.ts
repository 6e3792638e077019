// least_tokens through the proxy: a request's tokens are estimated from its body size, so one
// large prompt in flight weighs more than several small ones (least_connections would split
// them by count).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';
import { startWeirWith } from '../helpers/weir.ts';

/** An origin that holds every request until release(), then answers with its name. */
async function holding(name: string, headers: Record<string, string> = {}): Promise<{ port: number; bodies: number[]; release(): void; hold(): void; close(): Promise<void> }> {
  const held: http.ServerResponse[] = [];
  const bodies: number[] = [];
  let open = false;
  const server = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      bodies.push(n);
      if (open) res.writeHead(200, headers).end(name);
      else held.push(res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    bodies,
    release: () => {
      open = true;
      for (const r of held.splice(0)) r.writeHead(200, headers).end(name);
    },
    hold: () => {
      open = false;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

for (const [algorithm, bigAlone] of [['least_tokens', true], ['least_connections', false]] as const) {
  test(`${algorithm}: with a 40 KB prompt in flight on one target, 6 small prompts ${bigAlone ? 'all go to the other' : 'are split by count'}`, async () => {
    await buildFirstPartyPlugins();
    const a = await holding('a');
    const b = await holding('b');
    const { weir } = await startWeirWith(`listeners { listener "m" { address "127.0.0.1:0"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "llm"; } }
upstreams { upstream "llm" { target "127.0.0.1:${a.port}"; target "127.0.0.1:${b.port}"; load-balancing "${algorithm}"; } }`);
    try {
      const post = (bytes: number): Promise<string> => request(`${weir.url()}/v1/chat/completions`, { method: 'POST', body: 'x'.repeat(bytes), headers: { 'content-type': 'application/json' } }).then((r) => r.body.text());
      const pending = [post(40_000)];
      const arrived = async (n: number): Promise<void> => {
        for (let i = 0; i < 200 && a.bodies.length + b.bodies.length < n; i++) await new Promise((r) => setTimeout(r, 10));
      };
      await arrived(1);
      for (let i = 0; i < 6; i++) {
        pending.push(post(40));
        await arrived(i + 2);
      }
      const big = a.bodies.includes(40_000) ? a : b;
      const other = big === a ? b : a;
      const smallOnBig = big.bodies.filter((n) => n === 40).length;
      if (bigAlone) {
        // 40,000 bytes ≈ 10,001 tokens; six 40-byte prompts ≈ 66: the big one outweighs them all.
        assert.equal(smallOnBig, 0, `small prompts on the big one's target: ${smallOnBig}, on the other: ${other.bodies.length}`);
      } else {
        assert.ok(smallOnBig >= 2, `least_connections counts requests: ${smallOnBig} small prompts joined the big one`);
      }
      a.release();
      b.release();
      const answers = await Promise.all(pending);
      assert.equal(answers.length, 7);
    } finally {
      await weir.close();
      await a.close();
      await b.close();
    }
  });
}

test('least_tokens corrects its estimate from the response usage: after answers reporting x-generated-tokens 5000, small prompts weigh ≈ 5000 tokens and join the big one', async () => {
  await buildFirstPartyPlugins();
  const a = await holding('a', { 'x-generated-tokens': '5000' });
  const b = await holding('b', { 'x-generated-tokens': '5000' });
  const { weir } = await startWeirWith(`listeners { listener "m" { address "127.0.0.1:0"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "llm"; } }
upstreams { upstream "llm" { target "127.0.0.1:${a.port}"; target "127.0.0.1:${b.port}"; load-balancing "least_tokens"; } }`);
  try {
    const post = (bytes: number): Promise<string> => request(`${weir.url()}/v1/chat/completions`, { method: 'POST', body: 'x'.repeat(bytes) }).then((r) => r.body.text());
    a.release();
    b.release();
    // Twelve answers teach the plugin ≈ 5000 completion tokens per request.
    for (let i = 0; i < 12; i++) await post(40);
    a.bodies.length = 0;
    b.bodies.length = 0;
    a.hold();
    b.hold();
    const arrived = async (n: number): Promise<void> => {
      for (let i = 0; i < 200 && a.bodies.length + b.bodies.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    };
    const pending = [post(40_000)];
    await arrived(1);
    for (let i = 0; i < 6; i++) {
      pending.push(post(40));
      await arrived(i + 2);
    }
    const big = a.bodies.includes(40_000) ? a : b;
    const smallOnBig = big.bodies.filter((n) => n === 40).length;
    // Big ≈ 15,001, each small ≈ 5,011: after two or three small ones the other target is heavier.
    assert.ok(smallOnBig >= 1, `no small prompt joined the big one (${big.bodies.join(',')})`);
    a.release();
    b.release();
    assert.equal((await Promise.all(pending)).length, 7);
  } finally {
    await weir.close();
    await a.close();
    await b.close();
  }
});
