import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { keys, type LedgerTable } from '../ledger/table.js';
import type { DiscoverySummary } from './summary.js';

const INTERNAL_FIELDS = ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'kind'] as const;

function toSummary(item: Record<string, unknown>): DiscoverySummary {
  const copy: Record<string, unknown> = { ...item };
  for (const field of INTERNAL_FIELDS) delete copy[field];
  return copy as unknown as DiscoverySummary;
}

/** Discovery runs (`RUN#<runId>`), listed by start time through gsi1 (`RUNS`, `<startedAt>#<runId>`). */
export class RunRepository {
  constructor(private readonly table: LedgerTable) {}

  async put(summary: DiscoverySummary): Promise<void> {
    await this.table.client.send(
      new PutCommand({
        TableName: this.table.tableName,
        Item: {
          ...summary,
          ...keys.run(summary.runId),
          ...keys.runIndex(summary.startedAt, summary.runId),
          kind: 'RUN',
        },
      }),
    );
  }

  async get(runId: string): Promise<DiscoverySummary | undefined> {
    const out = await this.table.client.send(
      new GetCommand({ TableName: this.table.tableName, Key: keys.run(runId), ConsistentRead: true }),
    );
    return out.Item ? toSummary(out.Item) : undefined;
  }

  /** The most recent runs, newest first. */
  async recent(limit = 10): Promise<DiscoverySummary[]> {
    const out = await this.table.client.send(
      new QueryCommand({
        TableName: this.table.tableName,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :pk',
        ExpressionAttributeValues: { ':pk': keys.runIndex('', '').gsi1pk },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map(toSummary);
  }

  /** The run that started last, or undefined before the first run. */
  async latest(): Promise<DiscoverySummary | undefined> {
    return (await this.recent(1))[0];
  }
}
