/**
 * `GetUsagePlanKeys` without deleted keys. moto keeps a usage plan's link to an API key after `DeleteApiKey`
 * and goes on listing the key; real API Gateway drops it with the key. The proxy filters moto's list against
 * the keys that still exist (`GET /apikeys` to the upstream, all its pages, not recorded), so it also holds
 * for keys deleted directly at moto, bypassing the proxy. An upstream error on that lookup is answered as it
 * came.
 */
import type { Exchange } from './http.js';
import { type Item, readAllPages } from './paging.js';

/** Keeps the usage plan keys whose API key still exists in moto. */
export async function withoutDeletedKeys(ex: Exchange, planKeys: Item[]): Promise<Item[]> {
  if (planKeys.length === 0) return planKeys;
  const { items: keys } = await readAllPages(ex, '/apikeys');
  const existing = new Set(keys.map((key) => key.id));
  return planKeys.filter((key) => existing.has(key.id));
}
