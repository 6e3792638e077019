// Piscina task for bench/micro.ts: answers like a plugin that continues.
export default function (head) {
  return { tag: "continue", headers: head.headers.length };
}
