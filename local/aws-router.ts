/**
 * The local runtime's single AWS endpoint. The handler modules build every client from one
 * `AWS_ENDPOINT_URL` (as on Lambda, where each service has its own regional endpoint); locally the
 * services live in different places, so this loopback HTTP server routes each signed request by the
 * service of its SigV4 credential scope:
 * - `lambda` → the local Lambda Invoke endpoint (relay-command invoking discovery/subscriptions,
 *   relay-connection invoking itself for the `hello`);
 * - everything else (API Gateway, DynamoDB, Secrets Manager, STS) → the AWS endpoint: the fidelity proxy in
 *   front of the runtime's moto, or the user's own `AWS_ENDPOINT_URL` (http or https, with its path prefix).
 *
 * Requests and answers are streamed through untouched (method, path, query, headers, body; status, headers,
 * body): only `Host` is set to the target's, as a client configured with that endpoint would send it. The
 * router adds no call, retries nothing and answers nothing itself but a 502 when the target is unreachable.
 *
 * API Gateway write calls (anything but
 * GET/HEAD) are also copied to `onApiGatewayWrite` once answered: the change-event tap (change-tap.ts).
 *
 * This is the AWS endpoint `npm start` prints (port `--aws-port` / `FED_AWS_PORT`).
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { parseCredentialScope } from '../emulator/operations.js';
import type { ApiGatewayWrite } from './change-tap.js';
import { listen } from './ports.js';

export interface AwsRouterOptions {
  /** Where non-Lambda requests go (the fidelity proxy, or the user's endpoint). */
  readonly aws: string;
  /** Where Lambda requests go (the local Lambda Invoke endpoint). */
  readonly lambda: string;
  /** Port to listen on (127.0.0.1); a free one by default. */
  readonly port?: number;
  /** `--aws-port` hint of a port in use. */
  readonly portHint?: string;
  /** Account of the calls (the local runtime's one account). */
  readonly accountId?: string;
  /** Every answered API Gateway write call (method other than GET/HEAD), with both bodies. */
  readonly onApiGatewayWrite?: (write: ApiGatewayWrite) => void;
}

export interface AwsRouter {
  /** `http://127.0.0.1:<port>`: the `AWS_ENDPOINT_URL` of the handler modules. */
  readonly endpoint: string;
  close(): Promise<void>;
}

/** The service a request is signed for (`unsigned` when it carries no SigV4 scope). */
export function signedService(request: Pick<IncomingMessage, 'headers'>): string {
  const authorization = request.headers.authorization;
  return (
    parseCredentialScope(Array.isArray(authorization) ? authorization[0] : authorization)?.service ??
    'unsigned'
  );
}

type Tap = (status: number, requestBody: Buffer, responseBody: Buffer) => void;

function forward(target: URL, request: IncomingMessage, response: ServerResponse, tap?: Tap): void {
  const sent: Buffer[] = [];
  if (tap) request.on('data', (chunk: Buffer) => sent.push(chunk));
  const prefix = target.pathname.replace(/\/$/, '');
  const upstream = (target.protocol === 'https:' ? httpsRequest : httpRequest)(
    {
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      method: request.method,
      path: `${prefix}${request.url ?? '/'}`,
      headers: { ...request.headers, host: target.host },
    },
    (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
      if (tap) {
        const received: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => received.push(chunk));
        answer.on('end', () => tap(answer.statusCode ?? 502, Buffer.concat(sent), Buffer.concat(received)));
      }
      answer.pipe(response);
    },
  );
  upstream.on('error', (error) => {
    if (!response.headersSent) {
      const body = JSON.stringify({
        message: `local AWS router: ${target.origin} unreachable (${error.message})`,
      });
      response.writeHead(502, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
      });
      response.end(body);
    } else response.destroy(error);
  });
  request.pipe(upstream);
}

/** Starts the router on 127.0.0.1. */
export async function startAwsRouter(options: AwsRouterOptions): Promise<AwsRouter> {
  const aws = new URL(options.aws);
  const lambda = new URL(options.lambda);
  const server = createServer((request, response) => {
    const service = signedService(request);
    const method = request.method ?? 'GET';
    const onWrite = options.onApiGatewayWrite;
    const tap: Tap | undefined =
      onWrite && service === 'apigateway' && method !== 'GET' && method !== 'HEAD'
        ? (status, requestBody, responseBody) => {
            const authorization = request.headers.authorization;
            const scope = parseCredentialScope(
              Array.isArray(authorization) ? authorization[0] : authorization,
            );
            onWrite({
              method,
              url: request.url ?? '/',
              region: scope?.region ?? 'us-east-1',
              accountId: options.accountId ?? '123456789012',
              requestBody,
              status,
              responseBody,
            });
          }
        : undefined;
    forward(service === 'lambda' ? lambda : aws, request, response, tap);
  });
  const port = await listen(server, options.port ?? 0, '127.0.0.1', 'local AWS endpoint', options.portHint);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
