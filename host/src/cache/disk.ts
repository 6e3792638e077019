/**
 * One file per cache entry: `<dir>/<shard>/<sha256(key)>`, written to a temporary name and
 * renamed into place (atomic: a crash never leaves a half entry under a real name). A file
 * is a 4-byte big-endian head length, the head as JSON (key, policy, headers, tags, vary),
 * then the body. On start the heads are read back to rebuild the index; leftover
 * temporaries are removed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import CachePolicy from 'http-cache-semantics';
import type { Entry } from './store.ts';

interface Head {
  readonly key: string;
  readonly primary: string;
  readonly status: number;
  readonly headers: Entry['headers'];
  readonly tags: readonly string[];
  readonly vary: readonly string[];
  readonly size: number;
  readonly policy: CachePolicy.CachePolicyObject;
}

const TMP = '.tmp-';

export class DiskFiles {
  private readonly dir: string;
  private readonly shards: number;

  constructor(dir: string, shards: number) {
    this.dir = dir;
    this.shards = shards;
    for (let i = 0; i < shards; i++) mkdirSync(this.shardDir(i), { recursive: true });
  }

  private shardDir(i: number): string {
    return join(this.dir, i.toString(16).padStart(2, '0'));
  }

  /** The file of a key: the shard is the hash's first 32 bits modulo the shard count. */
  fileOf(key: string): string {
    const h = createHash('sha256').update(key).digest();
    return join(this.shardDir(h.readUInt32BE(0) % this.shards), h.toString('hex'));
  }

  /** Writes the entry's file atomically; resolves to its path. */
  async write(e: Entry, vary: readonly string[]): Promise<string> {
    const file = this.fileOf(e.key);
    const head: Head = { key: e.key, primary: e.primary, status: e.status, headers: e.headers, tags: e.tags, vary, size: e.size, policy: e.policy.toObject() };
    const json = Buffer.from(JSON.stringify(head));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(json.length);
    const tmp = `${file}${TMP}${randomBytes(6).toString('hex')}`;
    try {
      await writeFile(tmp, Buffer.concat([len, json, e.body]));
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return file;
  }

  async readBody(file: string): Promise<Buffer> {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const len = Buffer.alloc(4);
      await fh.read(len, 0, 4, 0);
      const start = 4 + len.readUInt32BE(0);
      const body = Buffer.alloc(size - start);
      if (body.length) await fh.read(body, 0, body.length, start);
      return body;
    } finally {
      await fh.close();
    }
  }

  remove(file: string): void {
    rm(file, { force: true }).catch(() => {});
  }

  /** Reads every entry head back (bodies stay on disk); removes temporaries and unreadable files. */
  load(): Array<{ entry: Entry; vary: readonly string[] }> {
    const out: Array<{ entry: Entry; vary: readonly string[]; mtime: number }> = [];
    for (const shard of readdirSync(this.dir)) {
      const d = join(this.dir, shard);
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      for (const name of readdirSync(d)) {
        const file = join(d, name);
        if (name.includes(TMP)) {
          rmSync(file, { force: true });
          continue;
        }
        try {
          const head = readHead(file);
          const entry: Entry = {
            key: head.key, primary: head.primary, status: head.status, headers: head.headers, tags: head.tags, size: head.size,
            policy: CachePolicy.fromObject(head.policy), body: Buffer.alloc(0), file,
          };
          out.push({ entry, vary: head.vary, mtime: statSync(file).mtimeMs });
        } catch {
          rmSync(file, { force: true });
        }
      }
    }
    // Oldest first, so the LRU's order starts out as the write order.
    return out.sort((a, b) => a.mtime - b.mtime);
  }
}

function readHead(file: string): Head {
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(4);
    if (readSync(fd, len, 0, 4, 0) !== 4) throw new Error('short file');
    const json = Buffer.alloc(len.readUInt32BE(0));
    if (readSync(fd, json, 0, json.length, 4) !== json.length) throw new Error('short head');
    return JSON.parse(json.toString('utf8')) as Head;
  } finally {
    closeSync(fd);
  }
}
