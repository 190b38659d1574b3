/**
 * Mesh TLS material made with the `openssl` CLI at test time (the commands /work/notes/mesh-security.md
 * documents): a mesh CA, node certificates it signs (SAN IP:127.0.0.1 and DNS:localhost, server and
 * client auth, EC P-256), and a node certificate signed by another CA, which a mesh must refuse.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

/** PEM file paths of one node: its certificate, its key, and the CA it trusts. */
export interface NodeTlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** Node config fields of those files. */
export function tlsInput(f: NodeTlsFiles): { meshTlsCert: string; meshTlsKey: string; meshTlsCa: string } {
  return { meshTlsCert: f.cert, meshTlsKey: f.key, meshTlsCa: f.ca };
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCa(dir: string, name: string): void {
  openssl(dir, ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

function makeNode(dir: string, ca: string, id: string): void {
  openssl(dir, ['req', '-new', ...EC, '-keyout', `${id}.key`, '-out', `${id}.csr`, '-subj', `/CN=${id}`]);
  openssl(dir, ['x509', '-req', '-in', `${id}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2',
    '-extfile', 'node.ext', '-out', `${id}.pem`]);
}

/**
 * Writes a mesh CA with a certificate for each of `ids`, and a certificate `rogue` signed by another
 * CA (`rogue.ca` is that CA), into a temporary folder removed at the end of the test.
 */
export function makeTestCerts(t: Test, ids: readonly string[]): { nodes: Map<string, NodeTlsFiles>; rogue: NodeTlsFiles } {
  const dir = mkdtempSync(join(tmpdir(), 'chatmesh-certs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'node.ext'), [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth,clientAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '',
  ].join('\n'));
  makeCa(dir, 'mesh-ca');
  makeCa(dir, 'other-ca');
  const nodes = new Map<string, NodeTlsFiles>();
  for (const id of ids) {
    makeNode(dir, 'mesh-ca', id);
    nodes.set(id, { cert: join(dir, `${id}.pem`), key: join(dir, `${id}.key`), ca: join(dir, 'mesh-ca.pem') });
  }
  makeNode(dir, 'other-ca', 'rogue');
  return { nodes, rogue: { cert: join(dir, 'rogue.pem'), key: join(dir, 'rogue.key'), ca: join(dir, 'other-ca.pem') } };
}

/** True when an `openssl` binary runs here. */
export function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
