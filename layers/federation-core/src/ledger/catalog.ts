import { DeleteCommand, GetCommand, PutCommand, paginateQuery, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { FederatedApi, FederatedPlan } from '../model.js';
import { keys, type LedgerTable } from './table.js';

type ApiItem = FederatedApi & { pk: string; sk: string; gsi1pk: string; gsi1sk: string; kind: 'API' };

function toApi(item: Record<string, unknown>): FederatedApi {
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, kind: _kind, ...api } = item;
  return api as unknown as FederatedApi;
}

/**
 * The federated catalog in the ledger: one `API#` item per federated API, plans embedded. Discovery
 * writes it; subscriptions read it to resolve `apiId`/`planId`; the relay reads it for snapshots.
 */
export class CatalogRepository {
  constructor(private readonly table: LedgerTable) {}

  async getApi(apiId: string): Promise<FederatedApi | undefined> {
    const out = await this.table.client.send(
      new GetCommand({ TableName: this.table.tableName, Key: keys.api(apiId), ConsistentRead: true }),
    );
    return out.Item ? toApi(out.Item) : undefined;
  }

  /** The API and one of its plans, or undefined for either that is not in the catalog. */
  async getPlan(apiId: string, planId: string): Promise<{ api?: FederatedApi; plan?: FederatedPlan }> {
    const api = await this.getApi(apiId);
    return { api, plan: api?.plans.find((p) => p.id === planId) };
  }

  /** Creates or replaces a catalog entry. */
  async putApi(api: FederatedApi): Promise<void> {
    const item: ApiItem = {
      ...api,
      ...keys.api(api.id),
      ...keys.apiIndex(api.source.accountId, api.source.region, api.id),
      kind: 'API',
    };
    await this.table.client.send(new PutCommand({ TableName: this.table.tableName, Item: item }));
  }

  async deleteApi(apiId: string): Promise<void> {
    await this.table.client.send(
      new DeleteCommand({ TableName: this.table.tableName, Key: keys.api(apiId) }),
    );
  }

  /** Every catalog entry of one account-region (what a discovery run diffs against). */
  listByAccountRegion(accountId: string, region: string): Promise<FederatedApi[]> {
    return this.query(`${accountId}#${region}#`);
  }

  /**
   * One page of the whole catalog in snapshot order (account, region, id), after the position `after`
   * (the `position` of the previous page's last entry): what a `sync` snapshot resumes from.
   */
  async listAfter(
    after: string | undefined,
    limit: number,
  ): Promise<{ apis: FederatedApi[]; positions: string[] }> {
    const out = await this.table.client.send(
      new QueryCommand({
        TableName: this.table.tableName,
        IndexName: 'gsi1',
        KeyConditionExpression: after === undefined ? 'gsi1pk = :pk' : 'gsi1pk = :pk AND gsi1sk > :after',
        ExpressionAttributeValues:
          after === undefined ? { ':pk': 'CATALOG' } : { ':pk': 'CATALOG', ':after': after },
        Limit: limit,
      }),
    );
    const items = out.Items ?? [];
    return { apis: items.map(toApi), positions: items.map((item) => String(item.gsi1sk)) };
  }

  /** The whole catalog, ordered by account, region and id (what a `sync` snapshot sends). */
  listAll(): Promise<FederatedApi[]> {
    return this.query('');
  }

  private async query(prefix: string): Promise<FederatedApi[]> {
    const apis: FederatedApi[] = [];
    const pages = paginateQuery(
      { client: this.table.client },
      {
        TableName: this.table.tableName,
        IndexName: 'gsi1',
        KeyConditionExpression: prefix ? 'gsi1pk = :pk AND begins_with(gsi1sk, :prefix)' : 'gsi1pk = :pk',
        ExpressionAttributeValues: prefix ? { ':pk': 'CATALOG', ':prefix': prefix } : { ':pk': 'CATALOG' },
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) apis.push(toApi(item));
    }
    return apis;
  }
}
