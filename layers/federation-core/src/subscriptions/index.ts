// The subscriptions core: the saga, its API key calls, views, plan removal, requests and wiring
// (the sweeper is exported by the core's index.ts itself).
export * from './api-keys.js';
export * from './invoke-errors.js';
export * from './key-material.js';
export * from './plan-removal.js';
export * from './schema.js';
export * from './service.js';
export * from './views.js';
export * from './wiring.js';
