/**
 * DynamoDB item sizes, counted as DynamoDB counts them (its 400 KB item limit) and as moto does (which
 * refuses an item over 405,000 of its bytes: "Item size has exceeded the maximum allowed size"). Give
 * them an item as read with the low-level client (`GetItemCommand`'s `Item`).
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/** DynamoDB's item size limit. */
export const ITEM_LIMIT = 400 * 1024;
/** moto's: the largest item it stores, by {@link motoItemSize}. */
export const MOTO_ITEM_LIMIT = 405_000;

/**
 * The size DynamoDB counts for an attribute value: UTF-8 bytes of strings, about one byte per two
 * significant digits of a number plus one, 3 bytes for a list or map plus one per element (and the
 * element's name in a map).
 */
export function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S, 'utf8');
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return value.B.byteLength;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS !== undefined) return value.SS.reduce((n, s) => n + Buffer.byteLength(s, 'utf8'), 0);
  if (value.NS !== undefined) return value.NS.reduce((n, s) => n + numberSize(s), 0);
  if (value.BS !== undefined) return value.BS.reduce((n, b) => n + b.byteLength, 0);
  if (value.L !== undefined) return value.L.reduce((n, v) => n + 1 + valueSize(v), 3);
  if (value.M !== undefined) return itemSize(value.M) + Object.keys(value.M).length + 3;
  throw new Error(`unknown attribute value ${JSON.stringify(value)}`);
}

function numberSize(n: string): number {
  const digits = n.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(1, digits.length) / 2) + 1;
}

/** An item's (or a map's) size by DynamoDB's rules: each attribute's name and value. */
export function itemSize(item: Record<string, AttributeValue>): number {
  return Object.entries(item).reduce((n, [name, v]) => n + Buffer.byteLength(name, 'utf8') + valueSize(v), 0);
}

/**
 * The size moto counts for an attribute value (`DynamoType.size`): UTF-8 bytes of strings, the
 * characters of a number, no overhead for lists and maps (only the names in a map).
 */
export function motoValueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S, 'utf8');
  if (value.N !== undefined) return value.N.length;
  if (value.B !== undefined) return value.B.byteLength;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS !== undefined) return value.SS.reduce((n, s) => n + Buffer.byteLength(s, 'utf8'), 0);
  if (value.NS !== undefined) return value.NS.reduce((n, s) => n + s.length, 0);
  if (value.BS !== undefined) return value.BS.reduce((n, b) => n + b.byteLength, 0);
  if (value.L !== undefined) return value.L.reduce((n, v) => n + motoValueSize(v), 0);
  if (value.M !== undefined) return motoItemSize(value.M);
  throw new Error(`unknown attribute value ${JSON.stringify(value)}`);
}

/** An item's (or a map's) size as moto counts it. */
export function motoItemSize(item: Record<string, AttributeValue>): number {
  return Object.entries(item).reduce(
    (n, [name, v]) => n + Buffer.byteLength(name, 'utf8') + motoValueSize(v),
    0,
  );
}
