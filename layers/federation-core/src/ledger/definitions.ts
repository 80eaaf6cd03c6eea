import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ErrorCode, FederationError } from '../errors.js';
import { isConditionFailed, keys, type LedgerTable } from './table.js';

/** Bytes per part: 350 KB of gzip data leaves room for keys and attributes under DynamoDB's 400 KB item limit. */
export const DEFINITION_PART_BYTES = 350 * 1024;

export interface StoredDefinition {
  readonly sha256: string;
  /** Size of the original bytes. */
  readonly size: number;
  /** Size once gzip'ed. */
  readonly storedSize: number;
  readonly parts: number;
  /** False when the definition was already in the ledger (nothing written). */
  readonly written: boolean;
}

/**
 * Exported OpenAPI/Swagger documents in the ledger, content-addressed by the hex sha256 of their exact
 * bytes. A document is gzip'ed and cut into parts of at most {@link DEFINITION_PART_BYTES}, stored as
 * `DEF#<sha256>` / `PART#00000`, `PART#00001`, ... Part 0 carries the manifest (part count, sizes) and
 * is written last, so a reader that finds it knows every part exists. Written once: a document that
 * is already there costs one read; parts are conditional puts, so concurrent writers agree.
 * Definitions are never rewritten or expired (the catalog and the outbox refer to them by sha256).
 */
export class DefinitionStore {
  constructor(private readonly table: LedgerTable) {}

  /** Stores `bytes` (once) and returns its address. */
  async put(bytes: Uint8Array): Promise<StoredDefinition> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const existing = await this.manifest(sha256);
    if (existing) return { ...existing, written: false };
    const gz = gzipSync(bytes, { level: 9 });
    const parts = Math.max(1, Math.ceil(gz.length / DEFINITION_PART_BYTES));
    const slice = (i: number) => gz.subarray(i * DEFINITION_PART_BYTES, (i + 1) * DEFINITION_PART_BYTES);
    for (let i = parts - 1; i >= 0; i--) {
      const item: Record<string, unknown> = {
        ...keys.definitionPart(sha256, i),
        kind: 'DEF',
        data: slice(i),
      };
      if (i === 0)
        Object.assign(item, { parts, size: bytes.length, storedSize: gz.length, encoding: 'gzip' });
      try {
        await this.table.client.send(
          new PutCommand({
            TableName: this.table.tableName,
            Item: item,
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
      } catch (error) {
        // Same address, same bytes: another writer stored this part first.
        if (!isConditionFailed(error)) throw error;
      }
    }
    return { sha256, size: bytes.length, storedSize: gz.length, parts, written: true };
  }

  /** True when the definition is stored completely. */
  async has(sha256: string): Promise<boolean> {
    return (await this.manifest(sha256)) !== undefined;
  }

  /** The exact stored bytes, or undefined when the definition is not (completely) stored. */
  async get(sha256: string): Promise<Uint8Array | undefined> {
    const chunks: Uint8Array[] = [];
    let manifest: { parts: number; size: number } | undefined;
    let startKey: Record<string, unknown> | undefined;
    const first = keys.definitionPart(sha256, 0);
    do {
      const out = await this.table.client.send(
        new QueryCommand({
          TableName: this.table.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :part)',
          ExpressionAttributeValues: { ':pk': first.pk, ':part': 'PART#' },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of out.Items ?? []) {
        if (item.sk === first.sk) manifest = { parts: item.parts as number, size: item.size as number };
        chunks.push(item.data as Uint8Array);
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    if (!manifest) return undefined;
    if (chunks.length !== manifest.parts) {
      throw new FederationError(
        ErrorCode.INTERNAL,
        `definition ${sha256}: ${chunks.length} of ${manifest.parts} parts stored`,
      );
    }
    const bytes = new Uint8Array(gunzipSync(Buffer.concat(chunks)));
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== sha256) {
      throw new FederationError(ErrorCode.INTERNAL, `definition ${sha256}: stored bytes hash to ${actual}`);
    }
    return bytes;
  }

  /** The stored document parsed as JSON, or undefined when absent. */
  async getDocument(sha256: string): Promise<unknown> {
    const bytes = await this.get(sha256);
    return bytes === undefined ? undefined : JSON.parse(new TextDecoder().decode(bytes));
  }

  private async manifest(sha256: string): Promise<Omit<StoredDefinition, 'written'> | undefined> {
    const out = await this.table.client.send(
      new GetCommand({
        TableName: this.table.tableName,
        Key: keys.definitionPart(sha256, 0),
        ProjectionExpression: '#parts, #size, storedSize',
        ExpressionAttributeNames: { '#parts': 'parts', '#size': 'size' },
        ConsistentRead: true,
      }),
    );
    if (!out.Item) return undefined;
    return {
      sha256,
      parts: out.Item.parts as number,
      size: out.Item.size as number,
      storedSize: out.Item.storedSize as number,
    };
  }
}
