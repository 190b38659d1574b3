/**
 * Fault suite: the churn scenarios of churn.fault.ts (SIGKILL and restart, SIGTERM and rejoin,
 * SIGSTOP past the dead-peer timeout) on a mesh secured with `--mesh-secret`, and with mutual TLS
 * (`--mesh-tls-cert/key/ca`; certificates made with openssl at test time by test/helpers/certs.ts).
 */
import t from 'tap';
import { haveOpenssl, makeTestCerts } from '../helpers/certs.js';
import { cliHasFlag } from '../helpers/fault-mesh.js';
import { runChurn } from '../helpers/fault-scenarios.js';

const FAULTS = [
  ['sigkill', 'SIGKILL and restart'],
  ['sigterm', 'SIGTERM and rejoin'],
  ['sigstop', 'SIGSTOP past the dead-peer timeout, SIGCONT'],
] as const;

for (const [fault, what] of FAULTS) {
  t.test(`(f) ${what} with --mesh-secret: no false offline, no flap, no duplicate, nothing lost`, async (t) => {
    await runChurn(t, { name: `(f) ${fault} --mesh-secret`, fault, extraArgs: () => ['--mesh-secret', 'fault-suite-mesh-secret'] });
  });
}

const tlsSkip = !cliHasFlag('--mesh-tls-cert')
  ? 'the CLI has no --mesh-tls-cert flag yet (chatmesh node --help)'
  : !haveOpenssl() ? 'no openssl binary to make test certificates' : false;

t.test('(g) the churn scenarios with mesh mTLS: no false offline, no flap, no duplicate, nothing lost', { skip: tlsSkip }, async (t) => {
  const certs = makeTestCerts(t, ['node-0', 'node-1', 'node-2', 'probe']);
  const pem = (id: string): { cert: string; key: string; ca: string } => certs.nodes.get(id)!;
  for (const [fault, what] of FAULTS) {
    await t.test(`(g) ${what} with mTLS`, async (t) => {
      await runChurn(t, {
        name: `(g) ${fault} mTLS`,
        fault,
        extraArgs: (_i, id) => ['--mesh-tls-cert', pem(id).cert, '--mesh-tls-key', pem(id).key, '--mesh-tls-ca', pem(id).ca],
        // The flags must not be accepted and ignored: the mesh port speaks TLS with the mesh CA's
        // certificates, and it is mutual (no client certificate, or one of another CA, is refused).
        ...(fault === 'sigkill' && {
          onFormed: async (mesh) => {
            const [ok, anonymous, rogue] = await Promise.all([
              mesh.tlsProbe(0, pem('probe')),
              mesh.tlsProbe(0, { ca: pem('probe').ca }),
              mesh.tlsProbe(0, { ...certs.rogue, ca: pem('probe').ca }),
            ]);
            t.ok(ok.handshake && ok.authorized && !ok.refused, 'node-0\'s mesh port accepts TLS with a certificate of the mesh CA', { probe: ok });
            t.ok(anonymous.refused, 'node-0\'s mesh port refuses TLS without a client certificate', { probe: anonymous });
            t.ok(rogue.refused, 'node-0\'s mesh port refuses a client certificate of another CA', { probe: rogue });
            return { tlsProbes: { ok, anonymous, rogue } };
          },
        }),
      });
    });
  }
});
