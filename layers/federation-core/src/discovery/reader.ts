import {
  type APIGatewayClient,
  GetExportCommand,
  GetRestApiCommand,
  GetRestApisCommand,
  GetStagesCommand,
  GetUsagePlansCommand,
  type RestApi,
  type Stage,
  type UsagePlan,
} from '@aws-sdk/client-api-gateway';
import { nextPosition } from '../aws/paging.js';
import type { RateLimiter } from '../aws/rate-limiter.js';
import { callWithRetry, type RetryOptions } from '../aws/retry.js';
import {
  awsErrorName,
  awsHttpStatus,
  FederationError,
  isAccessDenied,
  isNotFound,
  isThrottle,
} from '../errors.js';
import type { DefinitionUnavailable } from '../model.js';

/**
 * The reason API Gateway refused an export for good: a client error (4xx) that is not throttling,
 * access denied, not found or a concurrent modification — `BadRequestException` for an API it cannot
 * export. Undefined for any other failure (those make the account-region partial).
 */
export function exportRefusal(error: unknown): { name: string; message: string } | undefined {
  const cause = error instanceof FederationError && error.cause !== undefined ? error.cause : error;
  const status = awsHttpStatus(cause);
  if (status === undefined || status < 400 || status >= 500) return undefined;
  if ([403, 404, 409, 429].includes(status) || isThrottle(cause) || isAccessDenied(cause)) return undefined;
  const message = (cause as { message?: unknown }).message;
  return {
    name: awsErrorName(cause) ?? `HTTP ${status}`,
    message: typeof message === 'string' ? message.slice(0, 500) : '',
  };
}

/** What the catalog keeps for a stage whose export API Gateway refused for good ({@link exportRefusal}). */
export function refusedDefinition(
  refusal: { name: string; message: string },
  deploymentId: string,
): DefinitionUnavailable {
  return {
    code: 'EXPORT_REFUSED',
    message: `GetExport refused by API Gateway (${refusal.name}): ${refusal.message}`,
    deploymentId,
  };
}

/** API Gateway's largest page for GetRestApis / GetUsagePlans. */
export const PAGE_LIMIT = 500;

export type ReaderRetryOptions = Omit<RetryOptions, 'limiter' | 'onRetry' | 'context'>;

/**
 * The only API Gateway calls discovery makes, all `apigateway:GET` on the documented resources
 * (`/restapis`, `/restapis/*`, `/restapis/*\/stages/*`, `/usageplans`): GetRestApis, GetRestApi,
 * GetStages, GetExport, GetUsagePlans. Every attempt goes through the
 * account-region's bucket and the retry policy, and is counted by operation.
 */
export class ApiGatewayReader {
  /** Attempts by operation (retries included). */
  readonly calls: Record<string, number> = {};
  throttles = 0;

  constructor(
    private readonly client: APIGatewayClient,
    private readonly limiter: RateLimiter,
    private readonly retry: ReaderRetryOptions = {},
  ) {}

  /** Every REST API of the account-region (`GET /restapis`, limit 500, following `position`). Tags included. */
  async listRestApis(): Promise<RestApi[]> {
    const items: RestApi[] = [];
    const seen = new Set<string>();
    let position: string | undefined;
    do {
      const page = await this.restApisPage(position);
      items.push(...page.items);
      position = nextPosition(seen, page.position, 'GetRestApis');
    } while (position);
    return items;
  }

  /** Every usage plan of the account-region (`GET /usageplans`, limit 500, following `position`). */
  async listUsagePlans(): Promise<UsagePlan[]> {
    const items: UsagePlan[] = [];
    const seen = new Set<string>();
    let position: string | undefined;
    do {
      const page = await this.usagePlansPage(position);
      items.push(...page.items);
      position = nextPosition(seen, page.position, 'GetUsagePlans');
    } while (position);
    return items;
  }

  /** One page of `GET /restapis` after `position` (a resumable listing keeps the position). */
  async restApisPage(
    position: string | undefined,
    limit = PAGE_LIMIT,
  ): Promise<{ items: RestApi[]; position?: string }> {
    const page = await this.call('GetRestApis', 'GetRestApis', () =>
      this.client.send(new GetRestApisCommand({ limit, position })),
    );
    return { items: page.items ?? [], ...(page.position ? { position: page.position } : {}) };
  }

  /** One page of `GET /usageplans` after `position`. */
  async usagePlansPage(
    position: string | undefined,
    limit = PAGE_LIMIT,
  ): Promise<{ items: UsagePlan[]; position?: string }> {
    const page = await this.call('GetUsagePlans', 'GetUsagePlans', () =>
      this.client.send(new GetUsagePlansCommand({ limit, position })),
    );
    return { items: page.items ?? [], ...(page.position ? { position: page.position } : {}) };
  }

  /**
   * One REST API (`GET /restapis/{id}`, tags included), or `undefined` when API Gateway answers that
   * it does not exist (NotFound: the API is confirmed gone). Targeted discovery only.
   */
  async getRestApi(restApiId: string): Promise<RestApi | undefined> {
    return this.call('GetRestApi', `GetRestApi ${restApiId}`, async () => {
      try {
        return await this.client.send(new GetRestApiCommand({ restApiId }));
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    });
  }

  /** The stages of one REST API (`GET /restapis/{id}/stages`). */
  async getStages(restApiId: string): Promise<Stage[]> {
    const out = await this.call('GetStages', `GetStages ${restApiId}`, () =>
      this.client.send(new GetStagesCommand({ restApiId })),
    );
    return out.item ?? [];
  }

  /**
   * The stage's OpenAPI 3.0 export as JSON bytes (`GET /restapis/{id}/stages/{stage}/exports/oas30`).
   * No `extensions` parameter: neither `integrations` nor `apigateway` extensions, which would reveal
   * backend URIs, authorizers and role ARNs to API consumers.
   */
  async exportStage(restApiId: string, stageName: string): Promise<Uint8Array> {
    const out = await this.call('GetExport', `GetExport ${restApiId}/${stageName}`, () =>
      this.client.send(
        new GetExportCommand({ restApiId, stageName, exportType: 'oas30', accepts: 'application/json' }),
      ),
    );
    return out.body ?? new Uint8Array();
  }

  private call<T>(operation: string, context: string, fn: () => Promise<T>): Promise<T> {
    return callWithRetry(
      () => {
        this.calls[operation] = (this.calls[operation] ?? 0) + 1;
        return fn();
      },
      {
        ...this.retry,
        limiter: this.limiter,
        context,
        onRetry: (event) => {
          if (event.reason === 'throttle') this.throttles++;
        },
      },
    );
  }
}
