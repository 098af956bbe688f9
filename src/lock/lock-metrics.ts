// The lock service's metrics. Gauges are read from the table at scrape time.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { LockStateMachine } from './lock-state-machine.js';

export interface LockMetrics {
  readonly grants: Counter;
  readonly deadlocks: Counter;
  readonly expiries: Counter;
  readonly waitSeconds: Histogram;
  /** Acquires this leader refused by a bound before proposing them (label: limit). */
  readonly refusedEarly: Counter<'limit'>;
}

export function createLockMetrics(registry: Registry, sm: () => LockStateMachine): LockMetrics {
  new Gauge({
    name: 'dsync_lock_holders', help: 'Current lock holders (grants) in the table',
    registers: [registry], collect() { this.set(sm().table.stats().holders); },
  });
  new Gauge({
    name: 'dsync_lock_waiters', help: 'Requests waiting in lock queues',
    registers: [registry], collect() { this.set(sm().table.stats().waiters); },
  });
  new Gauge({
    name: 'dsync_lock_locks', help: 'Locks held or waited on',
    registers: [registry], collect() { this.set(sm().table.stats().locks); },
  });
  return {
    grants: new Counter({ name: 'dsync_lock_grants_total', help: 'Locks granted to callers of this node',
      registers: [registry] }),
    deadlocks: new Counter({ name: 'dsync_lock_deadlocks_total', help: 'Acquires refused as deadlocks',
      registers: [registry] }),
    expiries: new Counter({ name: 'dsync_lock_lease_expiries_total',
      help: 'Leases that ran out (counted by the leader)', registers: [registry] }),
    waitSeconds: new Histogram({ name: 'dsync_lock_acquire_wait_seconds',
      help: 'Time from acquire request to answer on this node', registers: [registry],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] }),
    refusedEarly: new Counter({ name: 'dsync_lock_refused_unlogged_total',
      help: 'Acquires the leader refused by a bound (429) without writing them to the log',
      labelNames: ['limit'], registers: [registry] }),
  };
}
