/**
 * `weir run` with no config: a demo backend on a free port and an embedded config that
 * routes to it, so a new user sees a request go through the proxy in one command.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** The demo backend answers with what it received, so users see what the proxy forwards. */
export async function startDemoBackend(): Promise<{ port: number; close(): void }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify(
        { backend: 'weir-demo', method: req.method, url: req.url, headers: req.headers, bodyBytes: Buffer.concat(chunks).length },
        null,
        2,
      );
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(`${body}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

export function demoConfig(listenPort: number, backendPort: number): string {
  return `// Weir's embedded demo configuration (\`weir run\` without -c).
schema-version "1.0"

listeners {
    listener "demo" {
        address "127.0.0.1:${listenPort}"
        protocol "h2c"
    }
}

routes {
    route "health" {
        priority 1000
        matches { path "/_/health" }
        builtin-handler "health"
    }
    route "ready" {
        priority 1000
        matches { path "/_/ready" }
        builtin-handler "ready"
    }
    route "metrics" {
        priority 1000
        matches { path "/_/metrics" }
        builtin-handler "metrics"
    }
    route "status" {
        priority 1000
        matches { path "/_/status" }
        builtin-handler "status"
    }
    route "demo" {
        matches { path-prefix "/" }
        upstream "demo-backend"
        filters "demo-headers"
        policies {
            timeout-secs 30
            retry {
                max-attempts 2
                retry-on "connect-failure"
            }
        }
    }
}

upstreams {
    upstream "demo-backend" {
        target "127.0.0.1:${backendPort}"
    }
}

filters {
    filter "demo-headers" {
        type "headers"
        response {
            set "x-served-by" "weir"
        }
    }
}

observability {
    logging {
        level "info"
        access-log #true
    }
}
`;
}
