/**
 * Country lookup for the `geo-country` host function and the geo plugin, from a
 * MaxMind-format database (the CC0 geo-whois-asn-country database by default; GeoLite2/
 * GeoIP2 Country files work too). Readers are shared per file and answers cached per IP.
 */
import { createRequire } from 'node:module';
import { open, Reader, type Response } from 'maxmind';
import { ASSETS, embeddedAsset, isBinary } from '../assets.ts';

const require = createRequire(import.meta.url);
const EMBEDDED_DB = `<embedded>/${ASSETS.geoDatabase}`;

/** The database shipped with Weir (npm package @ip-location-db/geo-whois-asn-country-mmdb). */
export function defaultGeoDatabase(): string {
  // The binary has no node_modules: the database is an embedded asset, read from memory.
  if (isBinary()) return EMBEDDED_DB;
  return require.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb');
}

type CountryRecord = Response & { country_code?: string; country?: { iso_code?: string } };

export class GeoDb {
  readonly path: string;
  private readonly reader: Reader<CountryRecord>;
  private readonly cache = new Map<string, string | null>();
  private readonly cacheMax: number;

  constructor(path: string, reader: Reader<CountryRecord>, cacheMax = 10_000) {
    this.path = path;
    this.reader = reader;
    this.cacheMax = cacheMax;
  }

  /** ISO 3166 alpha-2 country code, or undefined for private, unknown or invalid addresses. */
  country(ip: string): string | undefined {
    // Node reports IPv4 clients on dual-stack sockets as ::ffff:a.b.c.d
    const addr = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
    let hit = this.cache.get(addr);
    if (hit === undefined) {
      let rec: CountryRecord | null = null;
      try {
        rec = this.reader.get(addr);
      } catch {
        rec = null; // not an IP address
      }
      hit = rec?.country_code ?? rec?.country?.iso_code ?? null;
      if (this.cache.size >= this.cacheMax) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(addr, hit);
    }
    return hit ?? undefined;
  }
}

const open_ = new Map<string, Promise<GeoDb>>();

export function openGeoDb(path: string = defaultGeoDatabase()): Promise<GeoDb> {
  let p = open_.get(path);
  if (!p) {
    p = path === EMBEDDED_DB
      ? Promise.resolve(new GeoDb(path, new Reader<CountryRecord>(embeddedAsset(ASSETS.geoDatabase))))
      : open<CountryRecord>(path).then((r) => new GeoDb(path, r));
    open_.set(path, p);
    p.catch(() => open_.delete(path));
  }
  return p;
}
