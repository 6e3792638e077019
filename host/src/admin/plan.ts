/**
 * The admin listener as a step of a reload transaction (server.ts `planAdminServer`), with
 * the admin code loaded only when a config has an `admin-api`: a proxy without one starts
 * without it.
 */
import type { planAdminServer } from './server.ts';

export async function planAdmin(...args: Parameters<typeof planAdminServer>): ReturnType<typeof planAdminServer> {
  if (!args[0] && !args[1]) return { commit: () => undefined, abort: () => {} };
  const server = await import('./server.ts');
  return server.planAdminServer(...args);
}
