/**
 * The API Gateway key operations of subscriptions — create, attach to a usage plan, list by name,
 * delete — each in the key's own account-region (through its source's role), through that
 * account-region's token bucket and the retry policy. Shared by the subscribe saga and the sweeper.
 */
import {
  type APIGatewayClient,
  type ApiKey,
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
  GetApiKeysCommand,
} from '@aws-sdk/client-api-gateway';
import type { AwsTarget } from '../aws/clients.js';
import { nextPosition } from '../aws/paging.js';
import type { RateLimiterRegistry } from '../aws/rate-limiter.js';
import { callWithRetry, isConcurrentModification, type RetryOptions } from '../aws/retry.js';
import { awsErrorName, ErrorCode, FederationError, isNotFound, NotFoundError } from '../errors.js';
import type { SubscriptionRecord } from './repository.js';

/**
 * A 409 that says the thing exists: `ConflictException` whose message says "already" ("API Key already
 * exists", a key already on the usage plan) and is not API Gateway's concurrent-modification 409.
 */
function isAlreadyExists(error: unknown): boolean {
  if (awsErrorName(error) !== 'ConflictException' || isConcurrentModification(error)) return false;
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' && /already/i.test(message);
}

/** Name of the API key of a subscription (`CreateApiKey`'s `name`). */
export function apiKeyName(subscriptionId: string): string {
  return `fed-${subscriptionId}`;
}

/** Start of the description of every key the agent creates for a subscription. */
export function apiKeyDescriptionPrefix(subscriptionId: string): string {
  return `apigw-federation subscription ${subscriptionId};`;
}

/** Where a subscription's keys live: its account-region and the role to reach it. */
export type KeyLocation = Pick<SubscriptionRecord, 'subscriptionId' | 'accountId' | 'region' | 'roleArn'>;

export interface ApiKeysDeps {
  /** API Gateway client of an account-region (`AwsClientFactory.apiGateway`). */
  readonly apiGateway: (target: AwsTarget) => APIGatewayClient;
  /**
   * One token bucket per account-region, shared with the other API Gateway callers of the container, and
   * the key bucket `CreateApiKey`/`DeleteApiKey` pass first.
   */
  readonly limiters?: RateLimiterRegistry;
  /** Retry policy of API Gateway calls (default 4 attempts). */
  readonly retry?: Omit<RetryOptions, 'limiter' | 'context'>;
}

/** API key calls of subscriptions, in each subscription's own account-region. */
export class ApiKeys {
  constructor(private readonly deps: ApiKeysDeps) {}

  /**
   * `CreateApiKey` named for the subscription; `'taken'` when API Gateway already has a key with this
   * value (409 "API Key already exists"). A concurrent-modification 409 is transient and retried;
   * any other 409 is an AWS error, never read as "taken".
   */
  async create(record: SubscriptionRecord, value: string): Promise<string | 'taken'> {
    const out = await this.callOnPlan(record, 'CreateApiKey', async (client) => {
      try {
        return await client.send(
          new CreateApiKeyCommand({
            name: apiKeyName(record.subscriptionId),
            description:
              `${apiKeyDescriptionPrefix(record.subscriptionId)} application ${record.application.id}; ` +
              `api ${record.apiId}; plan ${record.planId}`,
            enabled: true,
            value,
          }),
        );
      } catch (error) {
        if (isAlreadyExists(error)) return 'taken' as const;
        throw error;
      }
    });
    if (out === 'taken') return out;
    if (!out.id) throw new FederationError(ErrorCode.AWS_ERROR, 'CreateApiKey answered without a key id');
    return out.id;
  }

  /**
   * `CreateUsagePlanKey`. API Gateway's duplicate answer (a 409 saying the key is already on the plan)
   * is what we wanted; the documented policy has no `GET` on usage plan keys, so that answer is the
   * verification: a concurrent-modification 409 is retried (and, if it persists, a transient error that
   * keeps the recorded key id), any other 409 an AWS error — neither is ever read as "attached".
   */
  async attach(record: SubscriptionRecord, apiKeyId: string): Promise<void> {
    await this.callOnPlan(record, 'CreateUsagePlanKey', async (client) => {
      try {
        await client.send(
          new CreateUsagePlanKeyCommand({
            usagePlanId: record.usagePlanId,
            keyId: apiKeyId,
            keyType: 'API_KEY',
          }),
        );
      } catch (error) {
        if (isAlreadyExists(error)) return;
        throw error;
      }
    });
  }

  /**
   * Every key named exactly `fed-<subscriptionId>` (`GetApiKeys` with that name query, a prefix match,
   * in pages of 500; values never requested). Needs the sweeper's opt-in `GET /apikeys`.
   */
  async listNamed(location: KeyLocation): Promise<ApiKey[]> {
    const name = apiKeyName(location.subscriptionId);
    const found: ApiKey[] = [];
    const seen = new Set<string>();
    let position: string | undefined;
    do {
      const page = await this.call(location, 'GetApiKeys', (client) =>
        client.send(new GetApiKeysCommand({ nameQuery: name, limit: 500, position, includeValues: false })),
      );
      for (const key of page.items ?? []) if (key.id && key.name === name) found.push(key);
      position = nextPosition(seen, page.position, 'GetApiKeys');
    } while (position);
    return found;
  }

  /** `DeleteApiKey`; false when the key was already gone (which counts as deleted). */
  delete(location: KeyLocation, apiKeyId: string): Promise<boolean> {
    return this.call(location, 'DeleteApiKey', async (client) => {
      try {
        await client.send(new DeleteApiKeyCommand({ apiKey: apiKeyId }));
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        throw error;
      }
    });
  }

  /**
   * A call about the subscription's usage plan: a NotFound (the usage plan or key vanished in API
   * Gateway) becomes NOT_FOUND with a hint to refresh the catalog, other failures their typed error.
   */
  private async callOnPlan<T>(
    record: SubscriptionRecord,
    operation: string,
    fn: (client: APIGatewayClient) => Promise<T>,
  ): Promise<T> {
    try {
      return await this.call(record, operation, fn);
    } catch (error) {
      const cause = error instanceof FederationError ? error.cause : error;
      if (cause !== undefined && isNotFound(cause)) {
        throw new NotFoundError(
          `${operation} (${record.accountId}/${record.region}): usage plan ${record.usagePlanId} or the subscription's API key no longer exists in API Gateway; run discovery to refresh the catalog`,
          { cause },
        );
      }
      throw error;
    }
  }

  /** One API Gateway call through the account-region's bucket and the retry policy. */
  private call<T>(
    location: KeyLocation,
    operation: string,
    fn: (client: APIGatewayClient) => Promise<T>,
  ): Promise<T> {
    const client = this.deps.apiGateway({
      region: location.region,
      accountId: location.accountId,
      ...(location.roleArn ? { roleArn: location.roleArn } : {}),
    });
    return callWithRetry(() => fn(client), {
      maxAttempts: 4,
      ...this.deps.retry,
      limiter: this.deps.limiters?.forOperation(location.accountId, location.region, operation),
      context: `${operation} (${location.accountId}/${location.region})`,
    });
  }
}
