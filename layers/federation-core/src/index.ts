// Public surface of the federation core. Handlers, the local runtime, tests and the benchmark import
// from here only. Layers (see docs/architecture.md): foundation modules (aws, config, ledger,
// protocol, publishing, ports, secrets and the top-level files) import no capability; the
// capabilities (discovery, subscriptions, relay) never import one another; the composition root
// wires them.
export * from './aws/clients.js';
export * from './aws/invoke.js';
export * from './aws/queue.js';
export * from './aws/rate-limiter.js';
export * from './aws/retry.js';
export * from './aws/session-policy.js';
export * from './composition/root.js';
export * from './config/load.js';
export * from './config/schema.js';
export * from './discovery/account-region.js';
export * from './discovery/catalog.js';
export * from './discovery/change-batch.js';
export * from './discovery/change-events.js';
export * from './discovery/commit.js';
export * from './discovery/diff.js';
export * from './discovery/engine.js';
export * from './discovery/fan-out.js';
export * from './discovery/function.js';
export * from './discovery/identity.js';
export * from './discovery/invocation.js';
export * from './discovery/organization.js';
export * from './discovery/reader.js';
export * from './discovery/run-ledger.js';
export * from './discovery/runs.js';
export * from './discovery/summary.js';
export * from './discovery/unit.js';
export * from './errors.js';
export * from './ledger/catalog.js';
export * from './ledger/connections.js';
export * from './ledger/definitions.js';
export * from './ledger/lease.js';
export * from './ledger/outbox.js';
export * from './ledger/table.js';
export * from './logger.js';
export * from './metrics.js';
export * from './model.js';
export * from './once.js';
export * from './pool.js';
export * from './ports/functions.js';
export * from './ports/revocations.js';
export * from './protocol/framing.js';
export * from './protocol/protocol.js';
export * from './protocol/requests.js';
export * from './publishing/ports.js';
export * from './publishing/publish.js';
export * from './publishing/publisher.js';
export * from './relay/connection.js';
export * from './relay/service.js';
export * from './relay/token.js';
export * from './secrets/rotation.js';
export * from './secrets/secret-cache.js';
export * from './subscriptions/index.js';
