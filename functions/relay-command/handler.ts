/**
 * relay-command: every command route (`discover`, `sync`, `subscribe`, `unsubscribe`, `ping`) and
 * `$default`. Hands the frame to the core's RelayService, which validates it, runs the command and
 * posts the reply through `@connections` (not as the route response) so framing applies to replies
 * too. An invalid frame gets a FAILED reply and causes no other AWS call.
 */
import {
  functionComposition,
  injectLambdaContext,
  type Logger,
  type MessageEvent,
  messageFrame,
  type RelayService,
} from '@apigw-federation/core';
import middy from '@middy/core';

export interface RelayCommandDeps {
  readonly service: Pick<RelayService, 'handleFrame'>;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

export function createRelayCommandHandler(deps: RelayCommandDeps) {
  return async (event: MessageEvent): Promise<{ statusCode: number }> => {
    const frame = messageFrame(event);
    if (!frame) {
      deps.logger?.warn('Ignored an event that is not a WebSocket message');
      return { statusCode: 400 };
    }
    await deps.service.handleFrame(frame.connectionId, frame.body);
    return { statusCode: 200 };
  };
}

const { root, logger } = functionComposition('relay-command');

export const handler = middy((event: MessageEvent) =>
  createRelayCommandHandler({ service: root.relay().service, logger })(event),
).use(injectLambdaContext(logger));
