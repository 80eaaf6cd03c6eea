export * from './invoke-errors.js';
export * from './key-material.js';
export * from './schema.js';
export * from './service.js';
export * from './wiring.js';
