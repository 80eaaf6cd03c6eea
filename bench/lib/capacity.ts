/**
 * Estimates the DynamoDB request units a call consumes, from the sizes of the items written and read
 * (pure). moto does not report consumed capacity, so the benchmark measures item sizes instead: an
 * item's size is the UTF-8 length of its attribute names and string values, 8 bytes per number and the
 * byte length of binary values — close to DynamoDB's own accounting.
 */
import { readUnits, writeUnits } from './cost.js';

/** Approximate stored size of a value (marshalled or plain), in bytes. */
export function approxBytes(value: unknown): number {
  if (value === null || value === undefined) return 1;
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  if (typeof value === 'number' || typeof value === 'bigint') return 8;
  if (typeof value === 'boolean') return 1;
  if (value instanceof Uint8Array) return value.byteLength;
  if (Array.isArray(value)) return 3 + value.reduce((s: number, v) => s + approxBytes(v), 0);
  if (value instanceof Set) return [...value].reduce((s: number, v) => s + approxBytes(v), 0);
  if (typeof value === 'object') {
    let total = 3;
    for (const [k, v] of Object.entries(value)) total += Buffer.byteLength(k, 'utf8') + approxBytes(v);
    return total;
  }
  return 8;
}

export interface CapacityTally {
  wru: number;
  rru: number;
  requests: Record<string, number>;
}

export function emptyTally(): CapacityTally {
  return { wru: 0, rru: 0, requests: {} };
}

const ALIASES: Record<string, string> = {
  Put: 'PutItem',
  Get: 'GetItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  BatchWrite: 'BatchWriteItem',
  BatchGet: 'BatchGetItem',
  TransactWrite: 'TransactWriteItems',
  TransactGet: 'TransactGetItems',
};

/** DynamoDB operation name of an SDK command name (`PutCommand`, `PutItemCommand` → `PutItem`). */
export function operationName(commandName: string): string {
  const base = commandName.replace(/Command$/, '');
  return ALIASES[base] ?? base;
}

type Input = Record<string, unknown>;
type Output = Record<string, unknown> | undefined;

/** Adds one call's estimated request units to `tally`. */
export function recordCapacity(
  tally: CapacityTally,
  commandName: string,
  input: Input,
  output: Output,
): void {
  const op = operationName(commandName);
  tally.requests[op] = (tally.requests[op] ?? 0) + 1;
  const consistent = input.ConsistentRead === true;
  switch (op) {
    case 'PutItem':
      tally.wru += writeUnits(approxBytes(input.Item));
      break;
    case 'UpdateItem':
      tally.wru += writeUnits(approxBytes(input.Key) + approxBytes(input.ExpressionAttributeValues));
      break;
    case 'DeleteItem':
      tally.wru += writeUnits(approxBytes(input.Key));
      break;
    case 'BatchWriteItem':
      for (const requests of Object.values((input.RequestItems ?? {}) as Record<string, Input[]>)) {
        for (const r of requests) {
          const put = r.PutRequest as { Item?: unknown } | undefined;
          tally.wru += writeUnits(put ? approxBytes(put.Item) : 1);
        }
      }
      break;
    case 'TransactWriteItems':
      for (const item of (input.TransactItems ?? []) as Input[]) {
        const put = item.Put as { Item?: unknown } | undefined;
        tally.wru += writeUnits(put ? approxBytes(put.Item) : 1, true);
      }
      break;
    case 'GetItem':
      tally.rru += readUnits(approxBytes(output?.Item), consistent);
      break;
    case 'Query':
    case 'Scan':
      tally.rru += readUnits(
        ((output?.Items ?? []) as unknown[]).reduce((s: number, item) => s + approxBytes(item), 0),
        consistent,
      );
      break;
    case 'BatchGetItem':
      for (const items of Object.values((output?.Responses ?? {}) as Record<string, unknown[]>)) {
        for (const item of items) tally.rru += readUnits(approxBytes(item), consistent);
      }
      break;
    default:
      break; // control-plane calls (CreateTable, DescribeTable, ...) cost no request units
  }
}
