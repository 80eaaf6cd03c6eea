/**
 * How the subscribe saga sorts what goes wrong: the internal signals it throws between its steps
 * (a hook's simulated crash, a lost lease, a retryable attempt) and the classification of typed
 * errors into transient (keep progress, free the lease) and permanent (compensate, mark FAILED).
 * Internal to the saga: not exported from the core.
 */
import { classifyFailure } from '../aws/retry.js';
import { ErrorCode, FederationError } from '../errors.js';
import type { SubscriptionRecord } from './repository.js';

/** Thrown out of hooks: a simulated crash, passed through without cleanup. */
export class HookAbort extends Error {
  constructor(readonly original: unknown) {
    super('hook aborted');
  }
}

/** The lease of this attempt was taken or the record moved on (revoked) while it worked. */
export class LeaseLost extends Error {}

/** A transient failure after which the attempt freed its lease: the caller may try again at once. */
export class Retryable extends Error {
  constructor(readonly failure: FederationError) {
    super(failure.message);
  }
}

/** Worth another attempt within the same call: AWS throttling or a transient AWS failure. */
export function isRetryableNow(error: FederationError): boolean {
  if (error.code === ErrorCode.AWS_THROTTLED) return true;
  return (
    error.code === ErrorCode.AWS_ERROR &&
    error.cause !== undefined &&
    classifyFailure(error.cause) !== undefined
  );
}

/** Subscription that answered with a failure this caller waited for: reported, not retried. */
export function failureOf(record: SubscriptionRecord): FederationError {
  const code = (Object.values(ErrorCode) as string[]).includes(record.failure?.code ?? '')
    ? (record.failure?.code as ErrorCode)
    : ErrorCode.INTERNAL;
  return new FederationError(
    code,
    `Subscription ${record.subscriptionId} failed: ${record.failure?.message ?? 'unknown error'}`,
  );
}

/** A failure another attempt can fix by itself (throttling, 5xx, network, access being fixed). */
export function isTransient(error: unknown): boolean {
  if (error instanceof FederationError) {
    if (
      error.code === ErrorCode.AWS_THROTTLED ||
      error.code === ErrorCode.AWS_ACCESS_DENIED ||
      error.code === ErrorCode.BUSY ||
      error.code === ErrorCode.CONFIG ||
      error.code === ErrorCode.INTERNAL
    ) {
      return true;
    }
    if (error.code === ErrorCode.AWS_ERROR) {
      return error.cause === undefined || classifyFailure(error.cause) !== undefined;
    }
    return false;
  }
  return true;
}
