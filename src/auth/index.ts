/**
 * Client authentication: the `hello` frame names a user (dev mode) or carries an HS256 JWT whose
 * `sub` claim is the user id.
 */
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { ChatError, ErrorCode, isValidId } from '../protocol/index.js';
import type { HelloFrame } from '../protocol/index.js';
import { systemClock } from '../util/index.js';
import type { Clock } from '../util/index.js';

export type AuthMode = 'dev' | 'jwt';

/** Options of an authenticator. */
export interface AuthOptions {
  readonly mode: AuthMode;
  /** HS256 secret; required when mode is `jwt`. */
  readonly jwtSecret?: string | undefined;
  /** Time source of the `exp` check. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/** Who a client is, and until when. */
export interface AuthResult {
  readonly user: string;
  /** The token's `exp` claim, in seconds since the epoch; undefined when no token was used (dev auth). */
  readonly exp: number | undefined;
}

/** Turns a `hello` (or a `refresh` token) into a user. Safe for concurrent use. */
export interface Authenticator {
  readonly mode: AuthMode;
  /** Resolves the user and the token's expiry, or rejects with a `ChatError` of code `unauthorized`. */
  authenticate(hello: HelloFrame): Promise<AuthResult>;
  /** Verifies a token (as `refresh` carries it); rejects with a `ChatError` of code `unauthorized`
   *  when it is invalid or expired, or when this node takes no tokens. */
  verifyToken(token: string): Promise<AuthResult & { exp: number }>;
}

/** Creates an authenticator; throws when `jwt` mode has no secret. */
export function createAuthenticator(opts: AuthOptions): Authenticator {
  if (opts.mode !== 'dev' && opts.mode !== 'jwt') throw new RangeError(`unknown auth mode "${String(opts.mode)}"`);
  if (opts.mode === 'jwt' && !opts.jwtSecret) throw new RangeError('--auth jwt needs --jwt-secret');
  const key = opts.jwtSecret ? new TextEncoder().encode(opts.jwtSecret) : undefined;
  const clock = opts.clock ?? systemClock;
  const verify = (token: string): Promise<AuthResult & { exp: number }> => {
    if (!key) return Promise.reject(new ChatError(ErrorCode.Unauthorized, 'this node accepts no tokens (no --jwt-secret)'));
    return verifyToken(token, key, clock);
  };
  return {
    mode: opts.mode,
    async authenticate(hello) {
      if (hello.token !== undefined) return verify(hello.token);
      if (opts.mode === 'dev' && hello.user !== undefined) return { user: hello.user, exp: undefined };
      throw new ChatError(ErrorCode.Unauthorized, 'a token is required (this node runs --auth jwt)');
    },
    verifyToken: verify,
  };
}

async function verifyToken(token: string, key: Uint8Array, clock: Clock): Promise<AuthResult & { exp: number }> {
  let sub: unknown;
  let exp: unknown;
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: ['HS256'], requiredClaims: ['exp', 'sub'], currentDate: new Date(clock.now()),
    });
    sub = payload.sub;
    exp = payload.exp;
  } catch (err) {
    const why = err instanceof joseErrors.JWTExpired ? 'token expired' : 'invalid token';
    throw new ChatError(ErrorCode.Unauthorized, why, { cause: err });
  }
  if (!isValidId(sub)) throw new ChatError(ErrorCode.Unauthorized, 'token "sub" is not a valid user id');
  // jose checked that `exp` is a number in the future.
  return { user: sub, exp: exp as number };
}

/** Options of `signToken`. */
export interface SignOptions {
  readonly user: string;
  readonly secret: string;
  /** Lifetime: a number of seconds or a jose time span such as `1h`, `30m`, `7d`. Default `1h`. */
  readonly ttl?: string | number;
}

/** Signs an HS256 client token for `user`. */
export async function signToken(opts: SignOptions): Promise<string> {
  if (!isValidId(opts.user)) throw new RangeError(`invalid user id "${opts.user}"`);
  if (!opts.secret) throw new RangeError('a secret is required');
  const ttl = opts.ttl ?? '1h';
  const exp = typeof ttl === 'number' ? Math.floor(Date.now() / 1000) + ttl : ttl;
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(opts.user)
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(opts.secret));
}
