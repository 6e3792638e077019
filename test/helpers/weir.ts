/** Starts Weir in-process on KDL text for tests (quiet logs, no access log). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWeir, type StartOptions, type Weir } from '../../host/src/weir.ts';
import { createLogger } from '../../host/src/observability/logger.ts';

export const quiet = createLogger({ level: (process.env['WEIR_TEST_LOG'] as 'info') ?? 'silent', format: 'json', sync: true });

export function tmpDir(prefix = 'weir-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes `text` to a temp weir.kdl and starts Weir on it (so reload-by-file works). */
export async function startWeirWith(text: string, opts: Partial<StartOptions> = {}): Promise<{ weir: Weir; file: string; url: string }> {
  const dir = tmpDir();
  const file = join(dir, 'weir.kdl');
  writeFileSync(file, text);
  const weir = await startWeir({ configPath: file, logger: quiet, accessLog: false, watch: false, ...opts });
  return { weir, file, url: weir.url() };
}

/** The usual one-listener, one-upstream config around extra blocks. */
export function basicConfig(originPort: number, extra: { routes?: string; filters?: string; upstreams?: string; top?: string; policies?: string } = {}): string {
  return `schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:0"; protocol "h2c"; } }
routes {
${extra.routes ?? ''}
    route "default" {
        priority 0
        matches { path-prefix "/" }
        upstream "origin"
        ${extra.policies ? `policies { ${extra.policies} }` : ''}
    }
}
upstreams {
    upstream "origin" { target "127.0.0.1:${originPort}" }
${extra.upstreams ?? ''}
}
${extra.filters ? `filters {\n${extra.filters}\n}` : ''}
system { graceful-shutdown-timeout-secs 5 }
${extra.top ?? ''}
`;
}
