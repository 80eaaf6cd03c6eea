/**
 * API Gateway paging for the list operations moto answers in one page whatever `limit` says: default 25
 * items, at most 500 (`limit` > 500 refused with 400 `BadRequestException`), an opaque `position` token,
 * stable order. Without it, a client that forgets to follow `position` would pass every test and miss
 * APIs in production.
 *
 * The whole list is read from the upstream with its own paging followed to the end (`limit=500` and its
 * `position`), so the proxy is also right in front of an emulator that pages (a user's moto behind a paging
 * proxy, LocalStack): moto answers it in one page. An upstream error on any page is answered as it came.
 */
import { type Exchange, send, sendError, UpstreamAnswer, type UpstreamResponse } from './http.js';

/** API Gateway's page sizes. */
export const DEFAULT_PAGE_SIZE = 25;
export const MAX_PAGE_SIZE = 500;
/** List operations moto answers in one page, whatever `limit` says; the proxy pages them like AWS. */
export const PAGED_OPERATIONS: ReadonlySet<string> = new Set([
  'GetRestApis',
  'GetUsagePlans',
  'GetApiKeys',
  'GetUsagePlanKeys',
]);

export type Item = Record<string, unknown>;

interface PageToken {
  /** id of the last item returned */
  a: string;
  /** offset after that item */
  o: number;
}

function encodePosition(token: PageToken): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

function decodePosition(position: string): PageToken | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(position, 'base64url').toString('utf8'));
    if (
      parsed &&
      typeof parsed === 'object' &&
      typeof (parsed as PageToken).a === 'string' &&
      Number.isInteger((parsed as PageToken).o) &&
      (parsed as PageToken).o >= 0
    ) {
      return parsed as PageToken;
    }
  } catch {
    // fall through
  }
  return undefined;
}

/** Pages read from the upstream for one list before giving up (a position that never ends). */
const MAX_UPSTREAM_PAGES = 1000;

/**
 * Every item of an upstream list (`path`, with `query` minus `limit`/`position`), following the upstream's
 * `position` to the end. Throws {@link UpstreamAnswer} with the first page that is not a 200.
 */
export async function readAllPages(
  ex: Exchange,
  path: string,
  query: URLSearchParams = new URLSearchParams(),
): Promise<{ items: Item[]; first: UpstreamResponse }> {
  const items: Item[] = [];
  let first: UpstreamResponse | undefined;
  let position: string | undefined;
  for (let page = 0; page < MAX_UPSTREAM_PAGES; page++) {
    const params = new URLSearchParams(query);
    params.delete('limit');
    params.delete('position');
    params.set('limit', String(MAX_PAGE_SIZE));
    if (position !== undefined) params.set('position', position);
    const response = await ex.get(`${path}?${params.toString()}`);
    if (response.status !== 200) throw new UpstreamAnswer(response);
    first ??= response;
    const parsed = JSON.parse(response.body.toString('utf8') || '{}') as { item?: Item[]; position?: string };
    items.push(...(parsed.item ?? []));
    if (!parsed.position || parsed.position === position) return { items, first };
    position = parsed.position;
  }
  throw new Error(`${path}: the upstream answered more than ${MAX_UPSTREAM_PAGES} pages`);
}

/**
 * Answers a paged list call: validates `limit`, fetches the upstream's full list, lets `adjust` correct its content
 * (where moto lists what AWS would not), and sends the page `position` points at. `rejected` = 400 for a bad
 * `limit` or `position`; `passed` = moto's error answered as is. `repeatPosition`: a page requested with a
 * `position` answers that same `position` (paging that never ends).
 */
export async function answerPaged(
  ex: Exchange,
  adjust?: (items: Item[]) => Promise<Item[]>,
  options: { repeatPosition?: boolean } = {},
): Promise<'paged' | 'rejected' | 'passed'> {
  const query = ex.url.searchParams;
  const limitParam = query.get('limit');
  let limit = DEFAULT_PAGE_SIZE;
  if (limitParam !== null) {
    const n = Number(limitParam);
    if (!/^-?\d+$/.test(limitParam) || n < 1 || n > MAX_PAGE_SIZE) {
      sendError(
        ex.res,
        ex.identity,
        400,
        'BadRequestException',
        n > MAX_PAGE_SIZE ? `Limit cannot exceed ${MAX_PAGE_SIZE}` : 'Invalid limit parameter',
      );
      return 'rejected';
    }
    limit = n;
  }
  let listed: Awaited<ReturnType<typeof readAllPages>>;
  try {
    listed = await readAllPages(ex, ex.url.pathname, query);
  } catch (error) {
    if (!(error instanceof UpstreamAnswer)) throw error;
    send(ex.res, error.response.status, error.response.headers, error.response.body);
    return 'passed';
  }
  const upstream = listed.first;
  const items = adjust ? await adjust(listed.items) : listed.items;
  const positionParam = query.get('position');
  let start = 0;
  if (positionParam !== null) {
    const token = decodePosition(positionParam);
    if (!token) {
      sendError(ex.res, ex.identity, 400, 'BadRequestException', 'Invalid position parameter');
      return 'rejected';
    }
    // Resume after the last item returned; if it has gone since, fall back to the offset.
    const index = items.findIndex((item) => item.id === token.a);
    start = index >= 0 ? index + 1 : Math.min(token.o, items.length);
  }
  const page = items.slice(start, start + limit);
  const end = start + page.length;
  const result: { item: Item[]; position?: string } = { item: page };
  const last = page[page.length - 1];
  if (end < items.length && last) result.position = encodePosition({ a: String(last.id), o: end });
  // Broken paging (setPagingFault): the page after `position` says `position` again.
  if (options.repeatPosition && positionParam !== null) result.position = positionParam;
  send(ex.res, 200, { ...upstream.headers, 'content-type': 'application/json' }, JSON.stringify(result));
  return 'paged';
}
