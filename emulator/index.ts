/** The AWS emulator harness: moto lifecycle, the AWS-fidelity proxy and the API Gateway seeder. */
export * from './iam.js';
export * from './moto.js';
export * from './operations.js';
export * from './proxy.js';
export * from './seeder.js';
