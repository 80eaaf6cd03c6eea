/**
 * relay-connection: `$connect` and `$disconnect` of the relay.
 * - `$connect` (already authorized): records the connection, then asks for the `hello`. A connection
 *   cannot be posted to before `$connect` returns, so the function invokes itself asynchronously with
 *   `{ internal: 'hello', connectionId }` and that invocation posts the `hello` (retrying briefly on Gone).
 * - `$disconnect`: deletes the record.
 * Internal events are recognised by having no `requestContext`: everything API Gateway sends has one,
 * and client frames never reach this function (they go to relay-command).
 */
import {
  AwsClientFactory,
  type ConnectionRepository,
  createLogger,
  createRelayWiring,
  injectLambdaContext,
  LambdaInvoker,
  type Logger,
  loadConfig,
  once,
  type PostOutcome,
} from '@apigw-federation/core';
import middy from '@middy/core';
import type { APIGatewayProxyWebsocketEventV2, Context } from 'aws-lambda';

/** What the function asks itself to do after `$connect`. */
export interface HelloRequest {
  readonly internal: 'hello';
  readonly connectionId: string;
}

type ConnectionEvent = APIGatewayProxyWebsocketEventV2 & {
  headers?: Record<string, string | undefined>;
  requestContext: APIGatewayProxyWebsocketEventV2['requestContext'] & {
    identity?: { sourceIp?: string; userAgent?: string };
  };
};

export interface RelayConnectionDeps {
  readonly connections: ConnectionRepository;
  /** Posts the `hello` to a connection. */
  readonly sendHello: (connectionId: string) => Promise<PostOutcome>;
  /** Schedules the `hello` after `$connect` returns (default: asynchronous self-invocation). */
  readonly scheduleHello: (request: HelloRequest, context: Context) => Promise<void>;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

/** True for the function's own `{ internal: 'hello', connectionId }` event (never an API Gateway event). */
export function isHelloRequest(event: unknown): event is HelloRequest {
  if (typeof event !== 'object' || event === null || 'requestContext' in event) return false;
  const e = event as Record<string, unknown>;
  return e.internal === 'hello' && typeof e.connectionId === 'string' && e.connectionId.length > 0;
}

export function createRelayConnectionHandler(deps: RelayConnectionDeps) {
  return async (event: ConnectionEvent | HelloRequest, context: Context): Promise<{ statusCode: number }> => {
    if (isHelloRequest(event)) {
      const outcome = await deps.sendHello(event.connectionId);
      // Gone: the client left before its hello could be posted (short-lived CLI commands do).
      if (outcome === 'gone')
        deps.logger?.info('hello not delivered: connection gone', { connectionId: event.connectionId });
      else if (outcome === 'failed')
        deps.logger?.warn('hello not delivered', { connectionId: event.connectionId });
      return { statusCode: 200 };
    }
    const requestContext = (event as ConnectionEvent).requestContext;
    const connectionId = requestContext?.connectionId;
    if (!connectionId) return { statusCode: 400 };
    switch (requestContext.eventType) {
      case 'CONNECT': {
        await deps.connections.put({
          connectionId,
          ...(requestContext.identity?.sourceIp ? { sourceIp: requestContext.identity.sourceIp } : {}),
          ...(requestContext.identity?.userAgent ? { userAgent: requestContext.identity.userAgent } : {}),
        });
        try {
          await deps.scheduleHello({ internal: 'hello', connectionId }, context);
        } catch (error) {
          // The connection stays usable; the control plane learns the agent's identity from `ping`.
          deps.logger?.error('Cannot schedule hello', { connectionId, error });
        }
        deps.logger?.info('Connected', { connectionId });
        return { statusCode: 200 };
      }
      case 'DISCONNECT':
        await deps.connections.delete(connectionId);
        deps.logger?.info('Disconnected', { connectionId });
        return { statusCode: 200 };
      default:
        return { statusCode: 400 };
    }
  };
}

const config = loadConfig();
const clients = new AwsClientFactory({ region: config.runtime.region, endpoint: config.runtime.endpoint });
const logger = createLogger('relay-connection');
const wiring = once(() => createRelayWiring({ config, clients, logger }));
const invoker = new LambdaInvoker(clients.lambda());

const lambdaHandler = (event: ConnectionEvent | HelloRequest, context: Context) => {
  const { connections, service } = wiring();
  return createRelayConnectionHandler({
    connections,
    sendHello: (connectionId) => service.sendHello(connectionId),
    scheduleHello: (request, ctx) => invoker.invokeAsync(ctx.invokedFunctionArn, request),
    logger,
  })(event, context);
};

export const handler = middy(lambdaHandler).use(injectLambdaContext(logger));
