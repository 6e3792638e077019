/**
 * `type "url-rewrite"`: rewrites the request path before it goes upstream.
 *   replace-prefix-match "/v2/"   replace the route's matched path prefix (Gateway API semantics),
 *                                 or the filter's own `prefix "/api/"` when given
 *   regex-rewrite "^/u/(\d+)$" "/users/$1"   regex with substitution (Envoy's regex_rewrite)
 */
import type { FilterConfig } from '../config/types.ts';
import type { Phase, RequestContext } from '../pipeline/phases.ts';
import { NO_BODY } from '../pipeline/phases.ts';
import { child, stringArg } from './settings.ts';

export function urlRewriteFilter(cfg: FilterConfig): Phase {
  const s = cfg.settings;
  const replacement = stringArg(s, 'replace-prefix-match');
  const ownPrefix = stringArg(s, 'prefix');
  const regexNode = child(s, 'regex-rewrite');
  const pattern = regexNode ? String(regexNode.args[0] ?? regexNode.props['pattern'] ?? '') : undefined;
  const substitution = regexNode ? String(regexNode.args[1] ?? regexNode.props['substitution'] ?? '') : '';
  const re = pattern !== undefined ? new RegExp(pattern) : undefined;

  return {
    name: cfg.name,
    kind: 'builtin:url-rewrite',
    failureMode: cfg.failureMode,
    requestBody: NO_BODY,
    responseBody: NO_BODY,
    onRequestHeaders(ctx: RequestContext) {
      const req = ctx.request;
      if (replacement !== undefined) {
        const prefix = ownPrefix ?? ctx.routePrefix;
        if (prefix !== undefined && req.path.startsWith(prefix)) {
          let rest = req.path.slice(prefix.length);
          // "/api" → "/" on "/api/x" must give "/x", not "//x"
          if (replacement.endsWith('/') && rest.startsWith('/')) rest = rest.slice(1);
          else if (!replacement.endsWith('/') && rest !== '' && !rest.startsWith('/')) rest = `/${rest}`;
          req.path = replacement + rest || '/';
        }
      }
      if (re) req.path = req.path.replace(re, substitution) || '/';
    },
  };
}
