/**
 * Fault suite (issue "Trust under churn and attack"): one node of three fails under continuous
 * sends and presence queries between users on the two other nodes. Every user stays online, so
 * any `offline` answer, any `presence_change`, any duplicate or lost message is a bug.
 * Run with `npm run test:fault`; sizes and timings in test/helpers/fault-scenarios.ts.
 */
import t from 'tap';
import { runChurn } from '../helpers/fault-scenarios.js';

t.test('(a) SIGKILL node-1, restart it: no false offline, no flap, no duplicate, nothing lost', async (t) => {
  await runChurn(t, { name: '(a) sigkill', fault: 'sigkill' });
});

t.test('(b) SIGTERM node-1 (graceful leave), then rejoin: no false offline, no flap, no duplicate, nothing lost', async (t) => {
  await runChurn(t, { name: '(b) sigterm', fault: 'sigterm' });
});

t.test('(c) SIGSTOP node-1 past the dead-peer timeout, SIGCONT: no false offline, no flap, no duplicate, nothing lost', async (t) => {
  await runChurn(t, { name: '(c) sigstop', fault: 'sigstop' });
});
