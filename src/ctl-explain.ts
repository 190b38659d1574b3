/**
 * Words a failed admin call for the operator: what went wrong and what to check. A call that could
 * not connect is told apart by a plain TCP probe of the address: nothing listening there, something
 * listening that does not speak gRPC (e.g. the node's HTTP port), or a name or network failure.
 */
import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { CtlError, splitHostPort } from './cli-args.js';

const PORT_HINT = 'the admin port of `chatmesh node` defaults to 9090 (--admin-port); `chatmesh cluster` gives node i port P+200+i';

/** Connects once to `host:port`: `open`, or the error code (`ECONNREFUSED`, `ENOTFOUND`, `ETIMEDOUT`, ...). */
export function probe(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (result: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done('ETIMEDOUT'), timeoutMs);
    socket.once('connect', () => done('open'));
    socket.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

/** grpc-js details without its empty trailing "Resolution note:". */
function details(err: grpc.ServiceError): string {
  return err.details.replace(/\s*Resolution note:\s*$/, '').trim() || (grpc.status[err.code] ?? String(err.code));
}

async function unreachable(err: grpc.ServiceError, admin: string, timeoutMs: number): Promise<CtlError> {
  const target = splitHostPort(admin);
  const result = target ? await probe(target.host, target.port, Math.min(timeoutMs, 2000)) : undefined;
  const cant = `cannot reach the admin API at ${admin}`;
  const because = (why: string): CtlError => new CtlError(`${cant}: ${why}`, 'UNAVAILABLE', { cause: err });
  switch (result) {
    case 'open':
      return new CtlError(`cannot talk to the admin API at ${admin}: it does not speak gRPC — is ${admin} the admin port? ${PORT_HINT}`, 'UNAVAILABLE', { cause: err });
    case 'ECONNREFUSED':
      return because(`nothing listens on ${admin} — is the node running? ${PORT_HINT}`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return because(`cannot resolve the host name "${target!.host}"`);
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return because(`no route to ${admin} (${result}) — a firewall, or the wrong address?`);
    default:
      return because(details(err));
  }
}

/**
 * Turns a failed call into a {@link CtlError} saying why and what to check; for a call that could
 * not connect (UNAVAILABLE with no answer from a server), probes the address first (at most 2 s).
 * Safe to call concurrently.
 */
export async function explain(err: grpc.ServiceError, admin: string, timeoutMs: number): Promise<CtlError> {
  switch (err.code) {
    case grpc.status.UNAUTHENTICATED:
      return new CtlError(`unauthorized: ${err.details} (pass --token or CHATMESH_ADMIN_TOKEN)`, 'UNAUTHENTICATED', { cause: err });
    case grpc.status.UNAVAILABLE:
      // A server's own UNAVAILABLE comes with its response headers; a failed connection with none.
      if (err.metadata?.get('content-type').length) return new CtlError(`UNAVAILABLE: ${details(err)}`, 'UNAVAILABLE', { cause: err });
      return unreachable(err, admin, timeoutMs);
    case grpc.status.UNIMPLEMENTED:
      return new CtlError(`cannot talk to the admin API at ${admin}: it speaks gRPC but does not implement ${err.details.replace(/^.* method /, '') || 'this call'} — ` +
        `is ${admin} the mesh port, or a node of an older version? ${PORT_HINT}`, 'UNIMPLEMENTED', { cause: err });
    case grpc.status.DEADLINE_EXCEEDED:
      return new CtlError(`no answer from ${admin} within ${timeoutMs} ms (raise --timeout-ms, or check the address)`, 'DEADLINE_EXCEEDED', { cause: err });
    default: {
      const name = grpc.status[err.code] ?? String(err.code);
      return new CtlError(`${name}: ${details(err)}`, name, { cause: err });
    }
  }
}
