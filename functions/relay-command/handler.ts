/**
 * relay-command: every command route (`discover`, `sync`, `subscribe`, `unsubscribe`, `ping`) and
 * `$default`. Validates the frame, runs the command through the core's RelayService, and posts the
 * reply through `@connections` (not as the route response) so framing applies to replies too. An
 * invalid frame gets a FAILED reply and causes no other AWS call.
 */
import {
  AwsClientFactory,
  createLogger,
  createRelayWiring,
  injectLambdaContext,
  type Logger,
  loadConfig,
  once,
  type RelayService,
} from '@apigw-federation/core';
import middy from '@middy/core';
import type { APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';

export interface RelayCommandDeps {
  readonly service: Pick<RelayService, 'handleFrame'>;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

export function createRelayCommandHandler(deps: RelayCommandDeps) {
  return async (event: APIGatewayProxyWebsocketEventV2): Promise<{ statusCode: number }> => {
    const requestContext = event?.requestContext;
    const connectionId = requestContext?.connectionId;
    if (typeof connectionId !== 'string' || !connectionId || requestContext.eventType !== 'MESSAGE') {
      deps.logger?.warn('Ignored an event that is not a WebSocket message');
      return { statusCode: 400 };
    }
    // A body that is not a string (never sent by API Gateway) is treated as an empty frame: FAILED reply.
    const raw: unknown = event.body;
    const body =
      typeof raw !== 'string'
        ? undefined
        : event.isBase64Encoded
          ? Buffer.from(raw, 'base64').toString('utf8')
          : raw;
    await deps.service.handleFrame(connectionId, body);
    return { statusCode: 200 };
  };
}

const config = loadConfig();
const clients = new AwsClientFactory({ region: config.runtime.region, endpoint: config.runtime.endpoint });
const logger = createLogger('relay-command');
const wiring = once(() => createRelayWiring({ config, clients, logger }));

export const handler = middy((event: APIGatewayProxyWebsocketEventV2) =>
  createRelayCommandHandler({ service: wiring().service, logger })(event),
).use(injectLambdaContext(logger));
