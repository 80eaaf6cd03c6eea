/**
 * The subscriptions function's requests: the strict, size-limited event schemas (`subscribe`,
 * `unsubscribe`, `get`, and the operator's `sweep`), their parsing into ValidationErrors that never
 * echo a key value, and the canonical form of a subscribe request that its hash is computed over.
 */
import { z } from 'zod';
import { formatIssues } from '../config/load.js';
import { ValidationError } from '../errors.js';

/** Ids (subscription, API, plan, application): 1–128 printable characters without spaces. */
const Id = z
  .string()
  .min(1, 'expected a non-empty id')
  .max(128, 'expected at most 128 characters')
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.:@/+=-]*$/,
    "expected letters, digits and '_.:@/+=-', starting with a letter or digit",
  );

/** API Gateway accepts key values of 20–128 alphanumeric characters. */
export const API_KEY_VALUE = /^[A-Za-z0-9]{20,128}$/;

const ApiKeyValue = z
  .string()
  .regex(API_KEY_VALUE, 'expected 20-128 letters and digits (API Gateway key value rules)');

const Application = z.strictObject({
  id: Id,
  name: z.string().trim().min(1, 'expected a non-empty name').max(256, 'expected at most 256 characters'),
});

export const SubscribeRequestSchema = z.strictObject({
  subscriptionId: Id,
  apiId: Id,
  planId: Id,
  application: Application,
  /** Custom key value; derived from the subscription id when absent. */
  apiKey: ApiKeyValue.optional(),
});

export const UnsubscribeRequestSchema = z.strictObject({ subscriptionId: Id });
export const GetSubscriptionRequestSchema = z.strictObject({ subscriptionId: Id });

/** The subscriptions function's event: `{ action, ...request }`, strict. */
export const SubscriptionsEventSchema = z.discriminatedUnion('action', [
  SubscribeRequestSchema.extend({ action: z.literal('subscribe') }),
  UnsubscribeRequestSchema.extend({ action: z.literal('unsubscribe') }),
  GetSubscriptionRequestSchema.extend({ action: z.literal('get') }),
]);

export type SubscribeRequest = z.infer<typeof SubscribeRequestSchema>;
export type UnsubscribeRequest = z.infer<typeof UnsubscribeRequestSchema>;
export type GetSubscriptionRequest = z.infer<typeof GetSubscriptionRequestSchema>;
export type SubscriptionsEvent = z.infer<typeof SubscriptionsEventSchema>;

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

/** Parses a subscriptions function event (size first, then shape). */
export function parseSubscriptionsEvent(input: unknown): SubscriptionsEvent {
  checkEventSize(input);
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ValidationError('Invalid event: expected a JSON object with an "action"');
  }
  const action = (input as { action?: unknown }).action;
  if (action !== 'subscribe' && action !== 'unsubscribe' && action !== 'get') {
    throw new ValidationError(
      `Invalid event: event.action: expected "subscribe", "unsubscribe" or "get" (received ${JSON.stringify(action) ?? 'nothing'})`,
    );
  }
  return parseRequest(SubscriptionsEventSchema, input);
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
    .array(Id)
    .min(1, 'expected at least one subscription id (or leave subscriptionIds out)')
    .max(MAX_SWEEP_IDS, `expected at most ${MAX_SWEEP_IDS} subscription ids`)
    .optional(),
  /** Largest number of candidate subscriptions examined by this call. */
  limit: z.number().int().min(1).max(MAX_SWEEP_LIMIT).optional(),
});
export type SweepRequest = z.infer<typeof SweepRequestSchema>;

/** The subscriptions function's `sweep` event. */
export const SweepEventSchema = SweepRequestSchema.extend({ action: z.literal('sweep') });
export type SweepEvent = z.infer<typeof SweepEventSchema>;

/** True when `input` is an event whose `action` is `sweep` (then parse it with {@link parseSweepEvent}). */
export function isSweepEvent(input: unknown): boolean {
  return (
    typeof input === 'object' &&
    input !== null &&
    !Array.isArray(input) &&
    (input as { action?: unknown }).action === 'sweep'
  );
}

/** Parses a `sweep` event (size first, then shape), or throws a ValidationError naming the bad fields. */
export function parseSweepEvent(input: unknown): SweepEvent {
  checkEventSize(input);
  return parseRequest(SweepEventSchema, input);
}
