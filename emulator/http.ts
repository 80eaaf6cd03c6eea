/**
 * HTTP plumbing of the fidelity proxy: reading a request, forwarding it to moto, answering the client, and
 * shaping an error the way the calling service's protocol does (API Gateway REST-JSON, STS query XML,
 * JSON 1.0 services), so SDK clients parse proxy-made errors exactly like real AWS ones.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { RequestIdentity } from './operations.js';

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One signed client request in flight, with what a domain handler needs to answer it. */
export interface Exchange {
  readonly res: ServerResponse;
  readonly identity: RequestIdentity;
  /** The request URL (path still percent-encoded, query parsed). */
  readonly url: URL;
  /** Forwards the client's request to moto unchanged (counted in the proxy's `forwarded` stat). */
  forward(): Promise<UpstreamResponse>;
  /** An auxiliary GET to moto with the client's headers, e.g. to look a stage up (not counted). */
  get(path: string): Promise<UpstreamResponse>;
}

/**
 * Thrown by a fix whose own upstream call did not succeed (a 429, a 5xx, an error the fix does not expect):
 * the proxy answers the client with exactly that response, as the upstream sent it, instead of inventing one.
 */
export class UpstreamAnswer extends Error {
  constructor(readonly response: UpstreamResponse) {
    super(`upstream answered ${response.status}`);
    this.name = 'UpstreamAnswer';
  }
}

/** The upstream's answer to an auxiliary GET: the response when 200, `undefined` when 404, else {@link UpstreamAnswer}. */
export async function lookup(ex: Exchange, path: string): Promise<UpstreamResponse | undefined> {
  const response = await ex.get(path);
  if (response.status === 200) return response;
  if (response.status === 404) return undefined;
  throw new UpstreamAnswer(response);
}

/** Headers that belong to one hop and are not copied between the client and moto. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'te',
  'trailer',
]);

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Sends the client's request (or, with `override`, another request with the client's headers) to `target`. */
export function forward(
  target: URL,
  req: IncomingMessage,
  body: Buffer,
  override?: { method: string; path: string; headers?: Record<string, string> },
): Promise<UpstreamResponse> {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
  }
  Object.assign(headers, override?.headers);
  headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const upstream = (target.protocol === 'https:' ? httpsRequest : httpRequest)(
      {
        host: target.hostname,
        port: target.port,
        method: override?.method ?? req.method,
        path: override?.path ?? req.url,
        headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    upstream.on('error', reject);
    upstream.end(body);
  });
}

export function send(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer | string,
): void {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined && !HOP_BY_HOP.has(k.toLowerCase())) out[k] = v;
  }
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  out['content-length'] = String(buf.length);
  res.writeHead(status, out);
  res.end(buf);
}

/** An error answered the way the given service's protocol shapes it. */
export function sendError(
  res: ServerResponse,
  identity: RequestIdentity,
  status: number,
  code: string,
  message: string,
  extraHeaders: Record<string, string> = {},
): void {
  const requestId = randomUUID();
  if (identity.service === 'apigateway') {
    send(
      res,
      status,
      {
        'content-type': 'application/json',
        'x-amzn-errortype': code,
        'x-amzn-requestid': requestId,
        ...extraHeaders,
      },
      JSON.stringify({ message }),
    );
    return;
  }
  if (identity.service === 'sts') {
    const xml =
      `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>${status < 500 ? 'Sender' : 'Receiver'}</Type>` +
      `<Code>${code}</Code><Message>${message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
    send(res, status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId, ...extraHeaders }, xml);
    return;
  }
  send(
    res,
    status,
    {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-errortype': code,
      'x-amzn-requestid': requestId,
      ...extraHeaders,
    },
    JSON.stringify({ __type: code, message }),
  );
}
