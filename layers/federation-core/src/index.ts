// Public surface of the federation core. Handlers, the local runtime, tests and the benchmark import
// from here only.
export * from './aws/clients.js';
export * from './aws/rate-limiter.js';
export * from './aws/retry.js';
export * from './config/load.js';
export * from './config/schema.js';
export * from './errors.js';
export * from './ledger/catalog.js';
export * from './ledger/outbox.js';
export * from './ledger/subscriptions.js';
export * from './ledger/table.js';
export * from './logger.js';
export * from './model.js';
export * from './relay/framing.js';
export * from './relay/ports.js';
export * from './relay/protocol.js';
