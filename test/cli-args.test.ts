/**
 * The CLI's pure parts, fed values: flag parsers, the rewording of commander's errors, the
 * `--admin` address check, and how a failed admin call is explained (with a real closed port and
 * a real TCP server that does not speak gRPC).
 */
import t from 'tap';
import { createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { Command, InvalidArgumentError } from 'commander';
import { adminAddress, intIn, int, positive, rewordCommanderError, splitHostPort, throwUsageErrors, UsageError, usageText } from '../src/cli-args.js';
import { explain, probe } from '../src/ctl-explain.js';
import { freePort } from './helpers/procs.js';

t.test('parsers', async (t) => {
  t.equal(int('42'), 42);
  t.throws(() => int('4.2'), InvalidArgumentError);
  t.throws(() => int('-1'), InvalidArgumentError);
  const limit = intIn(1, 10_000);
  t.same(['1', '10000', ' 7 '].map(limit), [1, 10_000, 7]);
  for (const bad of ['0', '10001', 'x', '', '1e3']) t.throws(() => limit(bad), { message: /must be (a whole number )?1-10000/ }, bad);
  t.equal(positive('0.5'), 0.5);
  for (const bad of ['0', '-1', 'x', ' ']) t.throws(() => positive(bad), { message: 'must be a positive number' }, bad);
});

t.test('--admin address', async (t) => {
  for (const ok of ['127.0.0.1:9090', 'node-1:1', '[::1]:65535', 'unix:/tmp/admin.sock', 'dns:///example.com:9090']) t.equal(adminAddress(ok), ok);
  t.throws(() => adminAddress('9090'), { message: 'must be host:port, e.g. 127.0.0.1:9090' });
  t.throws(() => adminAddress('localhost'), { message: 'must be host:port, e.g. 127.0.0.1:9090' });
  t.throws(() => adminAddress('h:0'), { message: 'must name a port 1-65535' });
  t.throws(() => adminAddress('h:65536'), { message: 'must name a port 1-65535' });
  t.same(splitHostPort('[::1]:9090'), { host: '::1', port: 9090 });
  t.same(splitHostPort('a.b:1'), { host: 'a.b', port: 1 });
  t.equal(splitHostPort('unix:/x'), undefined);
});

t.test('commander errors reworded as one line', async (t) => {
  t.equal(rewordCommanderError("error: option '--limit <n>' argument '0' is invalid. must be 1-10000"), "option '--limit <n>' must be 1-10000 (got '0')");
  t.equal(rewordCommanderError("error: option '--auth <mode>' argument 'x' is invalid. Allowed choices are dev, jwt."), "option '--auth <mode>' allowed choices are dev, jwt (got 'x')");
  t.equal(rewordCommanderError("error: option '--http-port <port>' value 'x' from env 'CHATMESH_HTTP_PORT' is invalid. must be a whole number"),
    "option '--http-port <port>' must be a whole number (got 'x' from CHATMESH_HTTP_PORT)");
  t.equal(rewordCommanderError("error: unknown option '--jsn'\n(Did you mean --json?)"), "unknown option '--jsn' (did you mean --json?)");
  t.equal(rewordCommanderError("error: too many arguments for 'x'. Expected 0 arguments but got 1."), "too many arguments for 'x'. Expected 0 arguments but got 1.");
  t.equal(usageText('bad', 'chatmesh ctl'), "chatmesh: error: bad\nrun 'chatmesh ctl --help' for usage\n");
});

t.test('throwUsageErrors: a usage error names its command; --help is not an error', async (t) => {
  const program = new Command('p');
  program.command('sub').option('--n <n>', 'n', intIn(1, 2)).action(() => undefined);
  throwUsageErrors(program);
  await t.rejects(program.parseAsync(['sub', '--n', '3'], { from: 'user' }), new UsageError("option '--n <n>' must be 1-2 (got '3')", 'p sub'));
  const help = new Command('q').configureOutput({ writeOut: () => undefined });
  throwUsageErrors(help);
  await t.rejects(help.parseAsync(['--help'], { from: 'user' }), { exitCode: 0, code: 'commander.helpDisplayed' });
});

function failed(code: grpc.status, details: string, answered = false): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  if (answered) metadata.set('content-type', 'application/grpc+proto');
  return Object.assign(new Error(details), { code, details, metadata }) as grpc.ServiceError;
}

t.test('explain: a connection failure is told apart by probing the address', async (t) => {
  const silent = createServer((s) => s.destroy());
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  const open = `127.0.0.1:${(silent.address() as { port: number }).port}`;
  const closed = `127.0.0.1:${await freePort()}`;
  const noConn = failed(grpc.status.UNAVAILABLE, 'No connection established. Last error: x. Resolution note: ');

  t.match(await explain(noConn, open, 5000), { code: 'UNAVAILABLE', message: `cannot talk to the admin API at ${open}: it does not speak gRPC — is ${open} the admin port? ` });
  t.match(await explain(noConn, closed, 5000), { code: 'UNAVAILABLE', message: `cannot reach the admin API at ${closed}: nothing listens on ${closed} — is the node running? ` });
  t.equal((await explain(noConn, 'unix:/nowhere', 5000)).message, 'cannot reach the admin API at unix:/nowhere: No connection established. Last error: x.', 'no probe: the details, trimmed');
  t.equal(await probe('127.0.0.1', Number(closed.split(':')[1]), 1000), 'ECONNREFUSED');
  const answered = await explain(failed(grpc.status.UNAVAILABLE, 'the ranking is not known yet', true), open, 5000);
  t.equal(answered.message, 'UNAVAILABLE: the ranking is not known yet', 'a server\'s own UNAVAILABLE is not a connection failure');
});

t.test('explain: other statuses', async (t) => {
  const at = '127.0.0.1:1';
  t.match(await explain(failed(grpc.status.UNAUTHENTICATED, 'bad token', true), at, 5000), { code: 'UNAUTHENTICATED', message: /^unauthorized: bad token \(pass --token/ });
  t.match(await explain(failed(grpc.status.UNIMPLEMENTED, 'The server does not implement the method /chatmesh.admin.v1.Admin/GetStats', true), at, 5000),
    { code: 'UNIMPLEMENTED', message: /does not implement \/chatmesh\.admin\.v1\.Admin\/GetStats — is 127\.0\.0\.1:1 the mesh port/ });
  t.match(await explain(failed(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded', false), at, 250), { code: 'DEADLINE_EXCEEDED', message: 'no answer from 127.0.0.1:1 within 250 ms (raise --timeout-ms, or check the address)' });
  t.match(await explain(failed(grpc.status.INVALID_ARGUMENT, 'bad id', true), at, 5000), { code: 'INVALID_ARGUMENT', message: 'INVALID_ARGUMENT: bad id' });
  t.match(await explain(failed(grpc.status.INTERNAL, '', true), at, 5000), { message: 'INTERNAL: INTERNAL' });
});
