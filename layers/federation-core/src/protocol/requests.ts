/**
 * The requests the agent's functions accept: one definition of each field and request, from which
 * the relay's commands (`protocol.ts`), the functions' validation, the AsyncAPI document and the
 * routes derive. A field is defined once here; a command adds only `action` and `id`.
 */
import { z } from 'zod';
import { SourceNameSchema } from '../config/schema.js';

/** Ids (subscription, API, plan, application): 1–128 printable characters without spaces. */
export const IdSchema = z
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
  id: IdSchema,
  name: z.string().trim().min(1, 'expected a non-empty name').max(256, 'expected at most 256 characters'),
});

export const SubscribeRequestSchema = z.strictObject({
  subscriptionId: IdSchema.meta({ description: 'Idempotency key: a repeat returns the same key.' }),
  apiId: IdSchema.meta({ description: 'Catalog id of the federated API.' }),
  planId: IdSchema.meta({ description: 'Catalog id of one of the API’s plans.' }),
  application: Application,
  /** Custom key value; derived from the subscription id when absent. */
  apiKey: ApiKeyValue.optional().meta({
    description: 'Custom API key value; derived from the subscription id when absent.',
  }),
});

export const UnsubscribeRequestSchema = z.strictObject({ subscriptionId: IdSchema });
export const GetSubscriptionRequestSchema = z.strictObject({ subscriptionId: IdSchema });

/**
 * Subscription ids one internal `revoke-keys` request names: at the key bucket's 2 deletions a second,
 * 10 keys take about 5 s, far inside the subscriptions function's 30 s.
 */
export const MAX_REVOKE_KEYS_IDS = 10;

/**
 * The subscriptions function's internal `revoke-keys` request (discovery, asynchronously): delete
 * the API keys of these subscriptions, which are already REVOKED in the ledger (a plan removal).
 * Never a control-plane command.
 */
export const RevokeKeysRequestSchema = z.strictObject({
  subscriptionIds: z
    .array(IdSchema)
    .min(1, 'expected at least one subscription id')
    .max(MAX_REVOKE_KEYS_IDS, `expected at most ${MAX_REVOKE_KEYS_IDS} subscription ids`),
});
export type RevokeKeysRequest = z.infer<typeof RevokeKeysRequestSchema>;

/** Most subscriptions one `finish-revocations` call looks at (default {@link FINISH_REVOCATIONS_DEFAULT}). */
export const MAX_FINISH_REVOCATIONS = 200;
export const FINISH_REVOCATIONS_DEFAULT = 50;

/**
 * The subscriptions function's scheduled `finish-revocations` request (EventBridge, hourly): delete the
 * keys of subscriptions revoked a while ago whose key is still not deleted (a `revoke-keys` hand-over
 * that ended in the dead-letter queue, an unsubscribe whose deletion failed and was never repeated).
 */
export const FinishRevocationsRequestSchema = z.strictObject({
  limit: z.number().int().min(1).max(MAX_FINISH_REVOCATIONS).default(FINISH_REVOCATIONS_DEFAULT),
});
export type FinishRevocationsRequest = z.infer<typeof FinishRevocationsRequestSchema>;

export type SubscribeRequest = z.infer<typeof SubscribeRequestSchema>;
export type UnsubscribeRequest = z.infer<typeof UnsubscribeRequestSchema>;
export type GetSubscriptionRequest = z.infer<typeof GetSubscriptionRequestSchema>;

/** The sources a discovery run covers: names of configured sources, all when absent. */
export const DiscoverySourcesSchema = z
  .array(SourceNameSchema)
  .min(1)
  .max(100)
  .optional()
  .meta({ description: 'Names of configured sources to discover; all when absent.' });

/** Where the discovery function answers a relay `discover` when its run is done. */
export const ReplyToSchema = z.strictObject({
  connectionId: z.string().min(1).max(128),
  commandId: z.string().min(1).max(128),
});

/**
 * The discovery function's request: `{ sources?, full?, replyTo? }` (the relay's `discover` sends
 * its sources and `replyTo`; an operator may ask for `full`).
 */
export const DiscoveryRequestSchema = z.strictObject({
  sources: DiscoverySourcesSchema,
  full: z.boolean().optional(),
  replyTo: ReplyToSchema.optional(),
});
export type DiscoveryRequest = z.output<typeof DiscoveryRequestSchema>;
