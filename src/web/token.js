// Client tokens (JWT mode): when to renew one, and fetching a fresh one from a token URL.
import { REFRESH_MARGIN_FRACTION, REFRESH_MARGIN_MAX_MS, REFRESH_MARGIN_MIN_MS } from './state.js';

// The payload of a JWT, unverified (only to read its claims), or null.
function payload(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
    return claims && typeof claims === 'object' ? claims : null;
  } catch { return null; }
}

/** The claims of a JWT that has an `exp` (only to know when it expires), or null. */
export function jwtClaims(token) {
  const c = payload(token);
  return c && typeof c.exp === 'number' ? c : null;
}

/** The user a JWT names (its `sub`), or null. */
export function jwtSubject(token) {
  const c = payload(token);
  return c && typeof c.sub === 'string' ? c.sub : null;
}

/** Milliseconds until the token should be renewed (<= 0: now); Infinity when it has no exp. */
export function refreshDelay(token) {
  const c = jwtClaims(token);
  if (!c) return Infinity;
  const expMs = c.exp * 1000;
  const lifetime = expMs - (typeof c.iat === 'number' ? c.iat * 1000 : Date.now());
  const margin = Math.min(lifetime / 2, Math.max(REFRESH_MARGIN_MIN_MS, Math.min(REFRESH_MARGIN_MAX_MS, lifetime * REFRESH_MARGIN_FRACTION)));
  return expMs - margin - Date.now();
}

/** Fetches a token from the token URL: its body is the token, or JSON with a "token" field. */
export async function fetchToken(url) {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`answered HTTP ${res.status}`);
  const text = (await res.text()).trim();
  const token = text.startsWith('{') ? JSON.parse(text).token : text;
  if (typeof token !== 'string' || !token) throw new Error('answered no token');
  return token;
}
