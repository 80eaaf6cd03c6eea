/**
 * relay-connection: `$connect` and `$disconnect` of the relay, and the `hello` it schedules for itself
 * after `$connect` (a connection cannot be posted to before `$connect` returns). The core's
 * `handleConnectionEvent` records and deletes connections and posts the hello.
 */
import {
  type ConnectionEvent,
  functionComposition,
  type HelloRequest,
  handleConnectionEvent,
  injectLambdaContext,
  type RelayConnectionDeps,
} from '@apigw-federation/core';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';

export { type HelloRequest, isHelloRequest, type RelayConnectionDeps } from '@apigw-federation/core';

/** The handler logic with its dependencies injected (tests, the local runtime). */
export function createRelayConnectionHandler(deps: RelayConnectionDeps) {
  return (
    event: ConnectionEvent | HelloRequest,
    context: Pick<Context, 'invokedFunctionArn'>,
  ): Promise<{ statusCode: number }> => handleConnectionEvent(deps, event, context);
}

const { root, logger } = functionComposition('relay-connection');

const lambdaHandler = (event: ConnectionEvent | HelloRequest, context: Context) => {
  const { connections, service, invoker } = root.relay();
  return createRelayConnectionHandler({
    connections,
    sendHello: (connectionId) => service.sendHello(connectionId),
    scheduleHello: (request, ctx) => invoker.invokeAsync(ctx.invokedFunctionArn, request),
    logger,
  })(event, context);
};

export const handler = middy(lambdaHandler).use(injectLambdaContext(logger));
