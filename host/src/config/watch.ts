/**
 * Watches the files a config was read from and calls `onChange` (debounced) when one
 * changes. Directories are watched, not files: editors replace a file by renaming over it,
 * which ends a watch on the file itself.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';

export function watchConfigFiles(files: readonly string[], onChange: () => void, logger: Logger, debounceMs = 100): FSWatcher[] {
  const watchers: FSWatcher[] = [];
  const names = new Set(files);
  let timer: NodeJS.Timeout | undefined;
  for (const dir of new Set(files.map((f) => dirname(f)))) {
    try {
      const w = watch(dir, (_event, name) => {
        if (name && ![...names].some((f) => f.endsWith(`/${name}`)) && !name.endsWith('.kdl')) return;
        clearTimeout(timer);
        timer = setTimeout(onChange, debounceMs);
        timer.unref();
      });
      w.unref();
      // A watched directory that goes away (or inotify trouble) ends this watch, not the proxy.
      w.on('error', (err) => logger.warn({ dir, err: err.message }, 'config directory watch ended; SIGHUP still reloads'));
      watchers.push(w);
    } catch (err) {
      logger.warn({ dir, err: (err as Error).message }, 'cannot watch config directory');
    }
  }
  return watchers;
}
