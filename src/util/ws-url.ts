/**
 * Client WebSocket URLs of nodes (`--public-url`, `GET /nodes`): one check shared by the config
 * loader and by the mesh, which reads peers' URLs from their handshake (hostile input). Pure.
 */

/** Max length of a public URL, in characters (UTF-16 units of the normalized URL). */
export const MAX_PUBLIC_URL_LENGTH = 512;

/** A checked public URL, or why the input is not one. */
export type WsUrlCheck = { readonly url: string; readonly problem?: undefined } | { readonly url?: undefined; readonly problem: string };

/**
 * Checks that `input` is an absolute `ws://` or `wss://` URL with a host, no credentials and no
 * fragment, free of whitespace and control characters, at most `MAX_PUBLIC_URL_LENGTH` long
 * (before and after normalization). Answers the normalized URL (WHATWG `href`: lower-case scheme and
 * host, punycode host, default port dropped, `/` for an empty path) or a one-line reason. Total:
 * never throws, for any input.
 */
export function checkWsUrl(input: unknown): WsUrlCheck {
  if (typeof input !== 'string') return { problem: 'is not a string' };
  if (input === '') return { problem: 'is empty' };
  if (input.length > MAX_PUBLIC_URL_LENGTH) return { problem: `is longer than ${MAX_PUBLIC_URL_LENGTH} characters` };
  if (/[\s\x00-\x1f\x7f]/.test(input)) return { problem: 'contains whitespace or control characters' };
  let u: URL;
  try {
    u = new URL(input);
  } catch {
    return { problem: 'is not a URL' };
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') return { problem: `must start with ws:// or wss://, not ${u.protocol}//` };
  if (u.hostname === '') return { problem: 'has no host' };
  if (u.username !== '' || u.password !== '') return { problem: 'must not carry a user name or password' };
  if (u.hash !== '') return { problem: 'must not have a #fragment' };
  if (u.href.length > MAX_PUBLIC_URL_LENGTH) return { problem: `is longer than ${MAX_PUBLIC_URL_LENGTH} characters once normalized` };
  return { url: u.href };
}

/**
 * The default public URL of a node: `ws://<host>:<httpPort>/ws`, an IPv6 `host` in brackets
 * (given with or without them), normalized like `checkWsUrl` does when it passes the check.
 */
export function defaultPublicUrl(host: string, httpPort: number): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const raw = `ws://${h}:${httpPort}/ws`;
  return checkWsUrl(raw).url ?? raw;
}
