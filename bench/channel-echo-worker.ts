// Worker for bench/micro.ts: serves the plugin worker channel, answering like a plugin that
// continues (the same answer bench/echo-worker.mjs gives over a piscina message).
import { ChannelMemory, serveChannel } from '../plugin-abi/src/runtime/worker-channel.ts';
import type { WorkerServe } from '../plugin-abi/src/runtime/worker-protocol.ts';

export default function task(t: WorkerServe): Promise<void> {
  return serveChannel(new ChannelMemory(t.sab), t.port, t.wake, async (call, progress) => {
    progress.start(0);
    progress.answer({ tag: 'continue', headers: (call as { headers: unknown[] }).headers.length });
  });
}
