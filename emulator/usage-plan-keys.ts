/**
 * `GetUsagePlanKeys` without deleted keys. moto keeps a usage plan's link to an API key after `DeleteApiKey`
 * and goes on listing the key; real API Gateway drops it with the key. The proxy filters moto's list against
 * the keys that still exist (one `GET /apikeys` to moto per call, not recorded), so it also holds for keys
 * deleted directly at moto, bypassing the proxy.
 */
import type { Exchange } from './http.js';
import type { Item } from './paging.js';

/** Keeps the usage plan keys whose API key still exists in moto. */
export async function withoutDeletedKeys(ex: Exchange, planKeys: Item[]): Promise<Item[]> {
  if (planKeys.length === 0) return planKeys;
  const response = await ex.get('/apikeys');
  if (response.status !== 200) {
    throw new Error(`GET /apikeys answered ${response.status} while filtering GetUsagePlanKeys`);
  }
  const keys = (JSON.parse(response.body.toString('utf8') || '{}') as { item?: Item[] }).item ?? [];
  const existing = new Set(keys.map((key) => key.id));
  return planKeys.filter((key) => existing.has(key.id));
}
