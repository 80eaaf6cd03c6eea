/**
 * The agent's catalog in Gravitee's model (`gravitee-io/gravitee-integration-api` `model/**`):
 * a federated API (one REST API stage) becomes one `Api`, each usage plan attached to the stage one
 * `API_KEY` `Plan`, the stage's OpenAPI export one `SWAGGER` `Page`. The table is in docs/gravitee.md.
 */
import type { FederatedApi, FederatedPlan } from '../../layers/federation-core/src/protocol/protocol.js';

/** `io.gravitee.integration.api.model.Page` */
export interface GraviteePage {
  readonly pageType: 'SWAGGER';
  readonly content: string;
  readonly filename: string;
}

/** `io.gravitee.integration.api.model.Plan` */
export interface GraviteePlan {
  readonly id: string;
  readonly name: string;
  readonly description?: string;
  readonly planSecurityType: 'API_KEY';
  readonly characteristics: string[];
}

/** `io.gravitee.integration.api.model.Metadata` */
export interface GraviteeMetadata {
  readonly name: string;
  readonly value: string;
  readonly format: 'STRING';
}

/** `io.gravitee.integration.api.model.Api` (field order as its @JsonPropertyOrder). */
export interface GraviteeApi {
  readonly uniqueId: string;
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly description?: string;
  readonly connectionDetails: Record<string, string>;
  readonly type: 'PROXY';
  readonly pages?: GraviteePage[];
  readonly plans: GraviteePlan[];
  readonly metadata: GraviteeMetadata[];
}

/** What the bridge reads of a catalog entry (the relay's `api.upserted` payload). */
export type CatalogEntry = Pick<
  FederatedApi,
  'id' | 'name' | 'version' | 'description' | 'source' | 'endpoint' | 'labels' | 'plans'
> & {
  readonly definition?: { readonly format?: string; readonly document?: unknown };
};

/** Human-readable limits of a usage plan, as Gravitee shows plan characteristics. */
export function planCharacteristics(plan: Pick<FederatedPlan, 'throttle' | 'quota'>): string[] {
  const out: string[] = [];
  if (plan.throttle?.rateLimit !== undefined) out.push(`Rate limit: ${plan.throttle.rateLimit} requests/s`);
  if (plan.throttle?.burstLimit !== undefined) out.push(`Burst: ${plan.throttle.burstLimit} requests`);
  if (plan.quota?.limit !== undefined) {
    const period = plan.quota.period ? ` per ${plan.quota.period.toLowerCase()}` : '';
    out.push(`Quota: ${plan.quota.limit} requests${period}`);
  }
  return out;
}

export function toGraviteePlan(plan: FederatedPlan): GraviteePlan {
  return {
    id: plan.id,
    name: plan.name,
    ...(plan.description ? { description: plan.description } : {}),
    planSecurityType: 'API_KEY',
    characteristics: planCharacteristics(plan),
  };
}

/** Labels `key=value` (REST API tags) as metadata; a label without `=` is its own name with value `true`. */
export function labelMetadata(labels: readonly string[]): GraviteeMetadata[] {
  return labels.map((label) => {
    const eq = label.indexOf('=');
    return eq > 0
      ? { name: label.slice(0, eq), value: label.slice(eq + 1), format: 'STRING' }
      : { name: label, value: 'true', format: 'STRING' };
  });
}

/** The OpenAPI export as one SWAGGER page (none when discovery has no document for the stage). */
export function toGraviteePages(api: CatalogEntry): GraviteePage[] {
  const document = api.definition?.document;
  if (document === undefined || document === null) return [];
  const safe = `${api.name}-${api.version}`.replace(/[^A-Za-z0-9._-]+/g, '-');
  return [
    {
      pageType: 'SWAGGER',
      content: typeof document === 'string' ? document : JSON.stringify(document),
      filename: `${safe}.json`,
    },
  ];
}

/** One federated API as a Gravitee `Api`; `pages` only when asked (INGEST), not for DISCOVER. */
export function toGraviteeApi(api: CatalogEntry, options: { pages?: boolean } = {}): GraviteeApi {
  return {
    uniqueId: api.id,
    id: api.id,
    name: api.name,
    version: api.version,
    ...(api.description ? { description: api.description } : {}),
    connectionDetails: {
      url: api.endpoint,
      accountId: api.source.accountId,
      region: api.source.region,
      restApiId: api.source.restApiId,
      stage: api.source.stageName,
    },
    type: 'PROXY',
    ...(options.pages ? { pages: toGraviteePages(api) } : {}),
    plans: api.plans.map(toGraviteePlan),
    metadata: labelMetadata(api.labels),
  };
}

export interface Batch {
  readonly apis: GraviteeApi[];
  /** JSON bytes of `apis`. */
  readonly bytes: number;
}

/**
 * Groups APIs (with their pages) into INGEST batches whose `apis` JSON stays within `budgetBytes`.
 * An API larger than the budget goes alone; one larger than `maxApiBytes` (it could not fit any
 * message) goes without its pages, reported through `onOversized`.
 */
export function ingestBatches(
  apis: readonly CatalogEntry[],
  budgetBytes: number,
  maxApiBytes: number,
  onOversized: (api: CatalogEntry, bytes: number) => void = () => undefined,
): Batch[] {
  const batches: Batch[] = [];
  let current: GraviteeApi[] = [];
  let bytes = 2; // []
  for (const entry of apis) {
    let api = toGraviteeApi(entry, { pages: true });
    let size = Buffer.byteLength(JSON.stringify(api), 'utf8');
    if (size > maxApiBytes) {
      onOversized(entry, size);
      api = { ...api, pages: [] };
      size = Buffer.byteLength(JSON.stringify(api), 'utf8');
    }
    const added = size + (current.length > 0 ? 1 : 0);
    if (current.length > 0 && bytes + added > budgetBytes) {
      batches.push({ apis: current, bytes });
      current = [];
      bytes = 2;
    }
    bytes += size + (current.length > 0 ? 1 : 0);
    current.push(api);
  }
  if (current.length > 0 || batches.length === 0) batches.push({ apis: current, bytes });
  return batches;
}

/** `io.gravitee.integration.api.model.Subscription`, as SUBSCRIBE/UNSUBSCRIBE carry it. */
export interface GraviteeSubscription {
  readonly graviteeSubscriptionId?: string;
  readonly graviteeApplicationId?: string;
  readonly graviteeApplicationName?: string;
  readonly type?: string;
  readonly metadata?: Record<string, string>;
}

/** Why a SUBSCRIBE cannot become a relay `subscribe` (an ERROR reply, no relay call). */
export class SubscriptionInputError extends Error {
  override readonly name = 'SubscriptionInputError';
  readonly code = 'VALIDATION';
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

/** The relay `subscribe` for a Gravitee SUBSCRIBE `{apiId, subscription}`. */
export function toRelaySubscribe(payload: Record<string, unknown>): {
  action: 'subscribe';
  subscriptionId: string;
  apiId: string;
  planId: string;
  application: { id: string; name: string };
} {
  const apiId = text(payload.apiId);
  const subscription = (payload.subscription ?? {}) as GraviteeSubscription;
  if (!apiId) throw new SubscriptionInputError('apiId is missing');
  const subscriptionId = text(subscription.graviteeSubscriptionId);
  if (!subscriptionId) throw new SubscriptionInputError('subscription.graviteeSubscriptionId is missing');
  if (subscription.type !== undefined && subscription.type !== 'API_KEY') {
    throw new SubscriptionInputError(
      `subscription.type ${subscription.type} is not supported: AWS API Gateway usage plans take API keys (API_KEY)`,
    );
  }
  const planId = text(subscription.metadata?.planId);
  if (!planId) throw new SubscriptionInputError('subscription.metadata.planId is missing');
  const applicationId = text(subscription.graviteeApplicationId);
  if (!applicationId) throw new SubscriptionInputError('subscription.graviteeApplicationId is missing');
  return {
    action: 'subscribe',
    subscriptionId,
    apiId,
    planId,
    application: { id: applicationId, name: text(subscription.graviteeApplicationName) ?? applicationId },
  };
}

/** The relay `unsubscribe` for a Gravitee UNSUBSCRIBE `{apiId, subscription}`. */
export function toRelayUnsubscribe(payload: Record<string, unknown>): {
  action: 'unsubscribe';
  subscriptionId: string;
} {
  const subscription = (payload.subscription ?? {}) as GraviteeSubscription;
  const subscriptionId = text(subscription.graviteeSubscriptionId);
  if (!subscriptionId) throw new SubscriptionInputError('subscription.graviteeSubscriptionId is missing');
  return { action: 'unsubscribe', subscriptionId };
}

/**
 * `SubscriptionResult {graviteeSubscriptionId, apiKey, metadata}` from the relay's subscribe answer.
 * `metadata` carries what an unsubscribe needs (Gravitee returns it on UNSUBSCRIBE): the key id, the
 * usage plan, the account and the region.
 */
export function toSubscriptionResult(
  subscriptionId: string,
  answer: { apiKeyId: string; apiKey: string; usagePlanId: string; planId?: string },
  api: Pick<CatalogEntry, 'source'> | undefined,
): { graviteeSubscriptionId: string; apiKey: string; metadata: Record<string, string> } {
  return {
    graviteeSubscriptionId: subscriptionId,
    apiKey: answer.apiKey,
    metadata: {
      apiKeyId: answer.apiKeyId,
      usagePlanId: answer.usagePlanId,
      ...(answer.planId ? { planId: answer.planId } : {}),
      ...(api ? { accountId: api.source.accountId, region: api.source.region } : {}),
    },
  };
}
