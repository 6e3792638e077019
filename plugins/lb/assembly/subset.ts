// `subset`: a request names its subset in a header (`version=v2,region=eu`); it goes to the
// targets whose labels (from the upstream's `labels=`, passed in the plugin config by address)
// hold every pair. No header, or no target of the pool in the subset: the whole pool.
import { Config, Request, Target } from "@weir/sdk-assemblyscript";

/** `k=v,k2=v2` → ["k=v", "k2=v2"], trimmed, empty pairs dropped. */
function pairs(s: string): string[] {
  const out = new Array<string>(0);
  const parts = s.split(",");
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i].trim();
    if (p.length > 0) out.push(p);
  }
  return out;
}

export class Subsets {
  header: string = "x-subset";
  /** Label pairs by target address. */
  labels: Map<string, string[]> = new Map();

  configure(config: Config): void {
    this.header = config.getString("subset-header", "x-subset");
    const nodes = config.children("labels");
    for (let i = 0; i < nodes.length; i++) {
      const a = nodes[i].arg(0);
      const l = nodes[i].arg(1);
      if (a !== null && l !== null && a.asText !== null && l.asText !== null) this.labels.set(a.asText!, pairs(l.asText!));
    }
  }

  /** The members of `pool` in the request's subset, or `pool` when there are none. */
  pool(request: Request, pool: Target[]): Target[] {
    const h = request.header(this.header);
    if (h === null) return pool;
    const want = pairs(h);
    if (want.length == 0) return pool;
    const out = new Array<Target>(0);
    for (let i = 0; i < pool.length; i++) {
      if (!this.labels.has(pool[i].address)) continue;
      const have = this.labels.get(pool[i].address);
      let all = true;
      for (let j = 0; j < want.length && all; j++) all = have.includes(want[j]);
      if (all) out.push(pool[i]);
    }
    return out.length > 0 ? out : pool;
  }
}
