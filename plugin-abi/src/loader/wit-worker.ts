/**
 * Reads a component's world as WIT with jco's wasm-tools, in a short-lived worker thread:
 * wasm-tools is a large wasm module (≈40–70 MB once compiled), needed only while plugins
 * load. When the thread exits, that memory goes with it instead of staying in the proxy.
 */
import { parentPort } from 'node:worker_threads';

parentPort!.on('message', async (msg: { id: number; bytes: Uint8Array }) => {
  try {
    const { componentWit } = await import('@bytecodealliance/jco-transpile/wasm-tools');
    parentPort!.postMessage({ id: msg.id, wit: await componentWit(msg.bytes) });
  } catch (err) {
    parentPort!.postMessage({ id: msg.id, error: (err as Error).message ?? String(err) });
  }
});
