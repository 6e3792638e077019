// `locality_aware`: the targets of the proxy's own zone (upstream-info.local-zone, from
// WEIR_ZONE) first; when none of them is in the pool, the next zone in priority order, which
// is the order zones first appear in the upstream's target list.
import { Target, UpstreamInfo } from "@weir/sdk-assemblyscript";

/** The members of `pool` in the first zone, by priority, that has any. */
export function localityPool(upstream: UpstreamInfo, targets: Target[], pool: Target[]): Target[] {
  const order = new Array<string>(0);
  order.push(upstream.localZone);
  for (let i = 0; i < targets.length; i++) if (!order.includes(targets[i].zone)) order.push(targets[i].zone);
  for (let z = 0; z < order.length; z++) {
    const zone = new Array<Target>(0);
    for (let i = 0; i < pool.length; i++) if (pool[i].zone == order[z]) zone.push(pool[i]);
    if (zone.length > 0) return zone;
  }
  return pool;
}
