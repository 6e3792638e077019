// Helpers the first-party auth plugins (api-key, basic-auth, jwt) share: the 401 reply with
// a stable WEIR_ERR_AUTH_* code, hex, and the text of a file the host read for the plugin.
import { Config, Decision, header } from "@weir/sdk-assemblyscript";

/** `s` as a JSON string literal (quotes, backslashes and control characters escaped). */
export function jsonString(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 34) out += "\\\"";
    else if (c == 92) out += "\\\\";
    else if (c < 32) out += "\\u00" + (c < 16 ? "0" : "") + c.toString(16);
    else out += String.fromCharCode(c);
  }
  return out + "\"";
}

/**
 * The 401 every auth plugin sends: `WWW-Authenticate: challenge` and Weir's JSON error body
 * (`{"error":{"code","status","message"}}`, as in docs/errors.md). `no-store`: a cache between
 * the proxy and the client must not keep a refusal meant for one credential.
 */
export function unauthorized(code: string, message: string, challenge: string): Decision {
  const body = "{\"error\":{\"code\":" + jsonString(code) + ",\"status\":401,\"message\":" + jsonString(message) + "}}\n";
  return Decision.respond(401, body, [
    header("content-type", "application/json"),
    header("www-authenticate", challenge),
    header("cache-control", "no-store"),
  ]);
}

const HEX = "0123456789abcdef";

/** Lowercase hex of `b`. */
export function toHex(b: Uint8Array): string {
  let out = "";
  for (let i = 0; i < b.length; i++) out += HEX.charAt(b[i] >> 4) + HEX.charAt(b[i] & 15);
  return out;
}

/** The bytes of hex text, or null when it is not hex of whole bytes. */
export function fromHex(s: string): Uint8Array | null {
  if (s.length % 2 != 0) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = HEX.indexOf(s.charAt(2 * i).toLowerCase());
    const lo = HEX.indexOf(s.charAt(2 * i + 1).toLowerCase());
    if (hi < 0 || lo < 0) return null;
    out[i] = <u8>((hi << 4) | lo);
  }
  return out;
}

/**
 * The contents of a file key (`keys-file`, `htpasswd`, `jwks-file`): plugins read no files,
 * so the host reads the file named by the key and hands its text over as the node's `text`
 * property (plugin-abi/src/runtime/first-party.ts). Null when the key is absent.
 */
export function fileText(config: Config, name: string): string | null {
  const node = config.child(name);
  if (node === null) return null;
  const text = node.prop("text");
  if (text === null) {
    node.error("`" + name + "` has no file contents: the host reads the file (in `weir plugin test`, give them as text=\"…\")");
    return null;
  }
  return node.propString("text");
}

/** Non-empty lines of `text` that are not `#` comments, trimmed. */
export function dataLines(text: string): string[] {
  const out = new Array<string>(0);
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i].trim();
    if (l.length > 0 && !l.startsWith("#")) out.push(l);
  }
  return out;
}
