// The subscriptions core: the saga, its API key calls, views, plan removal, the lost-key sweeper,
// requests and its ledger repository.
export * from './api-keys.js';
export * from './function.js';
export * from './key-material.js';
export * from './plan-removal.js';
export * from './repository.js';
export * from './schema.js';
export * from './service.js';
export * from './sweeper.js';
export * from './views.js';
