/**
 * Renders docs/errors.md from the error table. Run it after adding a code:
 *   node host/src/errors-doc.ts > docs/errors.md
 * test/errors.test.ts fails when the file and the table disagree.
 */
import { ERRORS, type ErrorSpec } from './errors.ts';

const SOURCES: Record<string, string> = {
  downstream: 'the client sent something Weir refuses',
  upstream: 'the backend failed or was unreachable',
  plugin: 'a filter or WASM plugin failed',
  config: 'the configuration is wrong',
  internal: 'Weir itself (overload, shutdown, bugs)',
};

export function renderErrorsDoc(): string {
  const lines = [
    '# Errors',
    '',
    'Every error Weir reports carries a stable code `WEIR_ERR_*`. Codes never change meaning;',
    'alert and grep on them. When an error ends a request the client gets the status below and',
    'a JSON body:',
    '',
    '```json',
    '{"error":{"code":"WEIR_ERR_UPSTREAM_CONNECT","status":502,"message":"could not connect to the upstream","request_id":"…"}}',
    '```',
    '',
    'On a route with `service-type "web"` or `"static"` the body is instead a small HTML page',
    '(`text/html`) with the same status, message, code and request id.',
    '',
    'The same code is in the access log (`error`), the event log (`code`) and the',
    '`weir_errors_total{code}` metric. Config errors are printed as',
    '`file:line:column: error CODE: message (hint)` by `weir validate` and on a failed reload.',
    '',
    'Status 0 means the error never reaches a client (it is reported at load or reload time).',
    '',
  ];
  for (const source of Object.keys(SOURCES)) {
    lines.push(`## ${source[0]!.toUpperCase()}${source.slice(1)}: ${SOURCES[source]}`, '', '| Code | Status | Meaning |', '| --- | --- | --- |');
    for (const [code, spec] of Object.entries(ERRORS) as Array<[string, ErrorSpec]>) {
      if (spec.source === source) lines.push(`| \`${code}\` | ${spec.status} | ${spec.message} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

if (import.meta.main) process.stdout.write(renderErrorsDoc());
