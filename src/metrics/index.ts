/**
 * Prometheus metrics of one node (`/metrics`), on a registry of its own (no global state): the
 * admin stats as counters and gauges, histograms of end-to-end delivery latency, of replicated-write
 * latency and of peer-link batch sizes, and the default process metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { STAT_FIELDS } from '../admin/index.js';
import type { NodeStatsView } from '../admin/index.js';

/** A node's metrics. */
export interface NodeMetrics {
  readonly registry: Registry;
  /** Records one delivery's latency from acceptance at the sender's node to the socket write, in ms. */
  observeDelivery(ms: number): void;
  /** Records the size (envelopes) of one batch written on a peer link. */
  observeBatch(items: number): void;
  /** Records one replicated write's latency until every replica confirmed it, in ms. */
  observeStore(ms: number): void;
  /** Prometheus text exposition. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** Creates the metrics of a node whose counters `read` returns. */
export function createMetrics(read: () => NodeStatsView): NodeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let snapshot: NodeStatsView | undefined;
  const current = (): NodeStatsView => (snapshot ??= read());
  for (const { key, kind, metric, help } of STAT_FIELDS) {
    if (kind === 'gauge') {
      new Gauge({ name: `chatmesh_${metric}`, help, registers: [registry], collect() { this.set(current()[key]); } });
    } else if (kind === 'counter') {
      let last = 0;
      new Counter({
        name: `chatmesh_${metric}_total`, help, registers: [registry],
        collect() {
          const v = current()[key];
          if (v > last) this.inc(v - last);
          last = Math.max(last, v);
        },
      });
    }
  }
  const lastErrors = new Map<string, number>();
  new Counter({
    name: 'chatmesh_client_errors_total', help: 'Client error frames sent, by code', labelNames: ['code'], registers: [registry],
    collect() {
      for (const [code, n] of Object.entries(current().errors)) {
        const last = lastErrors.get(code) ?? 0;
        if (n > last) this.inc({ code }, n - last);
        lastErrors.set(code, Math.max(last, n));
      }
    },
  });
  const latency = new Histogram({
    name: 'chatmesh_delivery_latency_seconds',
    help: 'End-to-end delivery latency: accepted at the sender\'s node to written on the recipient\'s socket',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const store = new Histogram({
    name: 'chatmesh_store_latency_seconds',
    help: 'Time for a replicated write to be confirmed by every replica',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const batches = new Histogram({
    name: 'chatmesh_mesh_batch_size',
    help: 'Envelopes per batch written on peer links',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [registry],
  });
  return {
    registry,
    observeDelivery: (ms) => latency.observe(Math.max(0, ms) / 1000),
    observeBatch: (n) => batches.observe(n),
    observeStore: (ms) => store.observe(Math.max(0, ms) / 1000),
    async render() {
      snapshot = undefined;
      try {
        return { contentType: registry.contentType, body: await registry.metrics() };
      } finally {
        snapshot = undefined;
      }
    },
  };
}
