/**
 * The subscriptions function's requests: the strict, size-limited event (`subscribe`, `unsubscribe`,
 * `get`, the operator's `sweep` and discovery's internal `revoke-keys`), its parsing into ValidationErrors that never echo a key value,
 * and the canonical form of a subscribe request that its hash is computed over. The request schemas
 * themselves are the protocol's (`protocol/requests.ts`): the relay's commands extend the same ones.
 */
import { z } from 'zod';
import { formatIssues } from '../config/load.js';
import { ValidationError } from '../errors.js';
import {
  FinishRevocationsRequestSchema,
  GetSubscriptionRequestSchema,
  IdSchema,
  RevokeKeysRequestSchema,
  type SubscribeRequest,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '../protocol/requests.js';

export {
  API_KEY_VALUE,
  FINISH_REVOCATIONS_DEFAULT,
  type FinishRevocationsRequest,
  FinishRevocationsRequestSchema,
  type GetSubscriptionRequest,
  GetSubscriptionRequestSchema,
  MAX_FINISH_REVOCATIONS,
  MAX_REVOKE_KEYS_IDS,
  type RevokeKeysRequest,
  RevokeKeysRequestSchema,
  type SubscribeRequest,
  SubscribeRequestSchema,
  type UnsubscribeRequest,
  UnsubscribeRequestSchema,
} from '../protocol/requests.js';

/** Largest event accepted, in UTF-8 bytes of its JSON: requests are small. */
export const MAX_EVENT_BYTES = 8 * 1024;

/**
 * Parses `input` with `schema`, or throws a ValidationError naming every bad field. The received
 * value of an `apiKey` is never echoed into the message.
 */
export function parseRequest<T>(schema: z.ZodType<T>, input: unknown, root = 'event'): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const redacted = {
    ...result.error,
    issues: result.error.issues.map((issue) =>
      issue.path.includes('apiKey') ? { ...issue, input: undefined } : issue,
    ),
  } as z.ZodError;
  throw new ValidationError(`Invalid ${root}: ${formatIssues(redacted, root)}`);
}

/** The fields a repeat must match: canonical JSON, the custom key value included (it is only hashed). */
export function canonicalRequest(request: SubscribeRequest): string {
  return JSON.stringify([
    1,
    request.subscriptionId,
    request.apiId,
    request.planId,
    request.application.id,
    request.application.name,
    request.apiKey ?? null,
  ]);
}

/** Refuses an event larger than {@link MAX_EVENT_BYTES} (or not serialisable) before parsing its shape. */
function checkEventSize(input: unknown): void {
  let size: number;
  try {
    size = Buffer.byteLength(JSON.stringify(input) ?? '', 'utf8');
  } catch {
    throw new ValidationError('Invalid event: expected a JSON object');
  }
  if (size > MAX_EVENT_BYTES) {
    throw new ValidationError(`Invalid event: ${size} bytes, expected at most ${MAX_EVENT_BYTES}`);
  }
}

/** Largest number of subscriptions one sweep examines. */
export const MAX_SWEEP_LIMIT = 1000;
/** Subscriptions one sweep examines when the request names no limit. */
export const DEFAULT_SWEEP_LIMIT = 100;
/** Largest number of subscription ids one sweep request may name. */
export const MAX_SWEEP_IDS = 50;

export const SweepRequestSchema = z.strictObject({
  /** Sweep exactly these subscriptions (any status); default: every candidate in the ledger. */
  subscriptionIds: z
    .array(IdSchema)
    .min(1, 'expected at least one subscription id (or leave subscriptionIds out)')
    .max(MAX_SWEEP_IDS, `expected at most ${MAX_SWEEP_IDS} subscription ids`)
    .optional(),
  /** Largest number of candidate subscriptions examined by this call. */
  limit: z.number().int().min(1).max(MAX_SWEEP_LIMIT).optional(),
});
export type SweepRequest = z.infer<typeof SweepRequestSchema>;

/**
 * The subscriptions function's event: `{ action, ...request }`, strict; `sweep` is the operator's,
 * `revoke-keys` discovery's (asynchronous invoke), `finish-revocations` the schedule's.
 */
export const SubscriptionsEventSchema = z.discriminatedUnion('action', [
  SubscribeRequestSchema.extend({ action: z.literal('subscribe') }),
  UnsubscribeRequestSchema.extend({ action: z.literal('unsubscribe') }),
  GetSubscriptionRequestSchema.extend({ action: z.literal('get') }),
  SweepRequestSchema.extend({ action: z.literal('sweep') }),
  // Internal: discovery hands over the keys of the subscriptions a plan removal revoked.
  RevokeKeysRequestSchema.extend({ action: z.literal('revoke-keys') }),
  // Internal: the hourly schedule finishes revocations whose key deletion was lost.
  FinishRevocationsRequestSchema.extend({ action: z.literal('finish-revocations') }),
]);
export type SubscriptionsEvent = z.infer<typeof SubscriptionsEventSchema>;

const ACTIONS: readonly unknown[] = [
  'subscribe',
  'unsubscribe',
  'get',
  'sweep',
  'revoke-keys',
  'finish-revocations',
];

/** Parses a subscriptions function event (size first, then shape), `sweep` included. */
export function parseSubscriptionsEvent(input: unknown): SubscriptionsEvent {
  checkEventSize(input);
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ValidationError('Invalid event: expected a JSON object with an "action"');
  }
  const action = (input as { action?: unknown }).action;
  if (!ACTIONS.includes(action)) {
    throw new ValidationError(
      `Invalid event: event.action: expected "subscribe", "unsubscribe", "get", "sweep", "revoke-keys" or "finish-revocations" (received ${JSON.stringify(action) ?? 'nothing'})`,
    );
  }
  return parseRequest(SubscriptionsEventSchema, input);
}
