/**
 * Client authentication: the `hello` frame names a user (dev mode) or carries an HS256 JWT whose
 * `sub` claim is the user id.
 */
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { ChatError, ErrorCode, isValidId } from '../protocol/index.js';
import type { HelloFrame } from '../protocol/index.js';

export type AuthMode = 'dev' | 'jwt';

/** Options of an authenticator. */
export interface AuthOptions {
  readonly mode: AuthMode;
  /** HS256 secret; required when mode is `jwt`. */
  readonly jwtSecret?: string | undefined;
}

/** Turns a `hello` into a user id. Safe for concurrent use. */
export interface Authenticator {
  readonly mode: AuthMode;
  /** Resolves the user id, or rejects with a `ChatError` of code `unauthorized`. */
  authenticate(hello: HelloFrame): Promise<string>;
}

/** Creates an authenticator; throws when `jwt` mode has no secret. */
export function createAuthenticator(opts: AuthOptions): Authenticator {
  if (opts.mode !== 'dev' && opts.mode !== 'jwt') throw new RangeError(`unknown auth mode "${String(opts.mode)}"`);
  if (opts.mode === 'jwt' && !opts.jwtSecret) throw new RangeError('--auth jwt needs --jwt-secret');
  const key = opts.jwtSecret ? new TextEncoder().encode(opts.jwtSecret) : undefined;
  return {
    mode: opts.mode,
    async authenticate(hello) {
      if (hello.token !== undefined) {
        if (!key) throw new ChatError(ErrorCode.Unauthorized, 'this node accepts no tokens (no --jwt-secret)');
        return verifyToken(hello.token, key);
      }
      if (opts.mode === 'dev' && hello.user !== undefined) return hello.user;
      throw new ChatError(ErrorCode.Unauthorized, 'a token is required (this node runs --auth jwt)');
    },
  };
}

async function verifyToken(token: string, key: Uint8Array): Promise<string> {
  let sub: unknown;
  try {
    const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'], requiredClaims: ['exp', 'sub'] });
    sub = payload.sub;
  } catch (err) {
    const why = err instanceof joseErrors.JWTExpired ? 'token expired' : 'invalid token';
    throw new ChatError(ErrorCode.Unauthorized, why, { cause: err });
  }
  if (!isValidId(sub)) throw new ChatError(ErrorCode.Unauthorized, 'token "sub" is not a valid user id');
  return sub;
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
