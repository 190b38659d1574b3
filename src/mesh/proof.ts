/**
 * Proof of the mesh secret. Peers never put `--mesh-secret` itself on the wire: they send an HMAC
 * of a fixed label keyed by it, in the `Link` call's metadata (checked before the server reads a
 * single message) and in the handshake's `Hello.secret`.
 *
 * The proof is static, so whoever can read the traffic can replay it: the secret authenticates
 * peers, it does not protect the link. Use mesh TLS (`--mesh-tls-*`) where the network is not
 * trusted.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Call metadata key that carries the proof. */
export const MESH_PROOF_METADATA = 'chatmesh-mesh-proof';

const LABEL = 'chatmesh mesh link v1';

/** The proof of `secret`: base64url HMAC-SHA256 of a fixed label. Empty for no secret. */
export function meshProof(secret: string | undefined): string {
  if (!secret) return '';
  return createHmac('sha256', secret).update(LABEL).digest('base64url');
}

/** Constant-time comparison of a received proof with the expected one (`''`: no secret). */
export function proofMatches(got: unknown, expected: string): boolean {
  if (typeof got !== 'string') return false;
  if (expected === '') return got === '';
  // Digests first, so the comparison takes the same time whatever the received length.
  const h = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(got), h(expected));
}
