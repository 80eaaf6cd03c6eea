/**
 * Tags of REST APIs, as API Gateway keeps them: `TagResource` / `UntagResource` on
 * `arn:aws:apigateway:<region>::/restapis/<id>` change the `tags` that `GetRestApis` and `GetRestApi`
 * return. moto tags only stages (its TagResource on a REST API ARN fails), so the proxy answers these
 * two calls itself and overlays the tags on moto's answers. Tags given at `CreateRestApi` stay moto's.
 */
import type { Exchange } from './http.js';
import { send } from './http.js';

type Item = Record<string, unknown>;

/** `/tags/<arn>` of a REST API (not a stage) → its id. */
export function restApiOfTagPath(rawPath: string): string | undefined {
  const match = /^\/tags\/(.+)$/.exec(rawPath);
  if (!match) return undefined;
  const arn = decodeURIComponent(match[1]!);
  return /^arn:[^:]+:apigateway:[^:]+::\/restapis\/([^/]+)$/.exec(arn)?.[1];
}

export interface RestApiTags {
  /** Answers TagResource / UntagResource on a REST API ARN; false when the call is not one. */
  answer(ex: Exchange, method: string, body: Buffer): Promise<boolean>;
  /** Overlays the tags on REST API items (GetRestApis pages, GetRestApi). */
  overlay(item: Item): Item;
  clear(): void;
}

export function createRestApiTags(): RestApiTags {
  /** restApiId → tag key → value (undefined: removed). */
  const changes = new Map<string, Map<string, string | undefined>>();
  return {
    async answer(ex, method, body) {
      const restApiId = restApiOfTagPath(ex.url.pathname);
      if (!restApiId) return false;
      // The REST API must exist, as in API Gateway.
      const existing = await ex.get(`/restapis/${encodeURIComponent(restApiId)}`);
      if (existing.status !== 200) {
        send(ex.res, existing.status, existing.headers, existing.body);
        return true;
      }
      const tags = changes.get(restApiId) ?? new Map<string, string | undefined>();
      changes.set(restApiId, tags);
      if (method === 'PUT') {
        const input = JSON.parse(body.toString('utf8') || '{}') as { tags?: Record<string, string> };
        for (const [key, value] of Object.entries(input.tags ?? {})) tags.set(key, value);
      } else {
        for (const key of ex.url.searchParams.getAll('tagKeys')) tags.set(key, undefined);
      }
      send(ex.res, 204, {}, '');
      return true;
    },
    overlay(item) {
      const id = typeof item.id === 'string' ? item.id : undefined;
      const overlay = id ? changes.get(id) : undefined;
      if (!overlay) return item;
      const tags: Record<string, string> = { ...((item.tags as Record<string, string> | undefined) ?? {}) };
      for (const [key, value] of overlay) {
        if (value === undefined) delete tags[key];
        else tags[key] = value;
      }
      return { ...item, tags };
    },
    clear: () => changes.clear(),
  };
}
