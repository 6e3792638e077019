/** "host:port" / "[v6]:port" → parts. */
export function parseHostPort(address: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  if (!m) throw new Error(`invalid address ${address}`);
  return { host: m[1]!, port: Number(m[2]) };
}
