import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per daemon (tests create their own), so nothing leaks between instances. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'wogate_process_' });
  return {
    registry,
    hooks: new Counter({ name: 'wogate_hooks_total', help: 'Webhook deliveries by source and outcome', labelNames: ['source', 'outcome'], registers: [registry] }),
    denials: new Counter({ name: 'wogate_denials_total', help: 'Access denied by policy, by reason code', labelNames: ['code'], registers: [registry] }),
    actions: new Counter({ name: 'wogate_target_actions_total', help: 'Target calls by target, action and outcome', labelNames: ['target', 'action', 'outcome'], registers: [registry] }),
    grants: new Gauge({ name: 'wogate_grants', help: 'Grants wogate holds, by state', labelNames: ['state'], registers: [registry] }),
    rateLimited: new Counter({ name: 'wogate_rate_limited_total', help: 'Requests refused by a rate limit, by route (hooks, admin, login)', labelNames: ['route'], registers: [registry] }),
    refused: new Counter({ name: 'wogate_refused_total', help: 'Requests refused before the caller was authenticated, by area (hook, auth, portal, staff, http) and kind (error code or reason)', labelNames: ['area', 'kind'], registers: [registry] }),
    alerts: new Counter({ name: 'wogate_alerts_total', help: 'Alerts raised, by kind', labelNames: ['kind'], registers: [registry] }),
    drift: new Gauge({ name: 'wogate_drift_entries', help: 'Findings of the last drift check, by target and kind (unexpected, missing, unremovable)', labelNames: ['target', 'kind'], registers: [registry] }),
    reconcileSeconds: new Histogram({ name: 'wogate_reconcile_seconds', help: 'Duration of one reconcile pass', buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30], registers: [registry] }),
    expiryLagSeconds: new Histogram({ name: 'wogate_expiry_lag_seconds', help: 'Time from a grant\'s validUntil to its revoke confirmation', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30], registers: [registry] }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
