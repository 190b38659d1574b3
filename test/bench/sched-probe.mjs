// The machine's floor of event-loop delay: a Node process that does nothing but measure its own
// event-loop delay, the way the nodes' /metrics do (perf_hooks, 10 ms resolution, reset at the
// start of each measurement window). What it sees while a phase runs is the delay any process on
// this machine gets from the OS scheduler (cores shared by 3 nodes, the load generator and the
// kernel), not from work of its own: the part of a node's tail that no change to the node can cut.
//
// Forked by run.mjs; messages: { cmd: 'reset' } starts a window, { cmd: 'read' } answers
// { probe: { p50, p99, max } } in ms, net of the resolution like the nodes' figures.
import { monitorEventLoopDelay } from 'node:perf_hooks';

const RESOLUTION_MS = 10;
const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
h.enable();

const ms = (ns) => +Math.max(0, ns / 1e6 - RESOLUTION_MS).toFixed(2);

process.on('message', (m) => {
  if (m?.cmd === 'reset') h.reset();
  else if (m?.cmd === 'read') process.send?.({ probe: { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) } });
});
process.on('disconnect', () => process.exit(0));
