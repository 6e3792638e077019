/** Small readers over a filter's validated `ConfigNode` block. */
import type { ConfigNode, ConfigScalar } from '../config/types.ts';

export function child(node: ConfigNode, name: string): ConfigNode | undefined {
  return node.children.find((c) => c.name === name);
}

export function children(node: ConfigNode, name: string): ConfigNode[] {
  return node.children.filter((c) => c.name === name);
}

export function arg(node: ConfigNode, name: string): ConfigScalar | undefined {
  return child(node, name)?.args[0];
}

export function stringArg(node: ConfigNode, name: string): string | undefined {
  const v = arg(node, name);
  return v === undefined || v === null ? undefined : String(v);
}

export function numberArg(node: ConfigNode, name: string): number | undefined {
  const v = arg(node, name);
  return typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : undefined;
}
