// Keeping a JWT fresh: renewing it from the token URL before it expires and handing it to the
// open connection with `refresh`, so the server does not close it at the old `exp`.
import { TOKEN_RETRY_MS, state } from './state.js';
import { logEvent, timeOf } from './dom.js';
import { fetchToken, jwtClaims, refreshDelay } from './token.js';
import { request } from './net.js';

/** Plans the next renewal of the current token (after a welcome, or after a renewal). */
export function scheduleRefresh(delay) {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = null;
  const token = state.creds && state.creds.token;
  const claims = token && jwtClaims(token);
  if (!claims) return;
  const expires = timeOf(claims.exp * 1000);
  if (!state.tokenUrl) {
    logEvent('info', `your token expires at ${expires}; then you will be asked for a new one (a token URL renews it by itself)`);
    return;
  }
  const wait = delay ?? refreshDelay(token);
  if (!Number.isFinite(wait)) return;
  state.refreshTimer = setTimeout(refreshToken, Math.max(0, wait));
}

async function refreshToken() {
  state.refreshTimer = null;
  const ws = state.ws;
  let token;
  try {
    token = await fetchToken(state.tokenUrl);
  } catch (e) {
    if (state.ws !== ws) return;
    logEvent('error', `could not renew the token from the token URL (${e.message}); retrying`);
    scheduleRefresh(TOKEN_RETRY_MS);
    return;
  }
  if (state.ws !== ws) return;
  request({ type: 'refresh', token }, (_ack, err) => {
    if (err) {
      // `unauthorized` closes the connection (the login form tells why); `disconnected` reconnects.
      if (err.code !== 'disconnected') logEvent('error', `token refresh refused: ${err.code}`);
      return;
    }
    state.creds = { token };
    const c = jwtClaims(token);
    logEvent('conn', `token refreshed${c ? `, valid until ${timeOf(c.exp * 1000)}` : ''}`);
    scheduleRefresh();
  });
}
