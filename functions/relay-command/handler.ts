/**
 * relay-command: every command route (`discover`, `sync`, `subscribe`, `unsubscribe`, `ping`) and
 * `$default`. Hands the frame to the core's RelayService, which validates it, runs the command and
 * posts the reply through `@connections` (not as the route response) so framing applies to replies
 * too. An invalid frame gets a FAILED reply and causes no other AWS call. `sync` runs asynchronously:
 * the function invokes itself with the sync's state, and each invocation sends what its time allows
 * and hands the rest on (`RelayService.continueSync`).
 */
import {
  functionComposition,
  injectLambdaContext,
  isSyncJob,
  type Logger,
  type MessageEvent,
  messageFrame,
  type RelayService,
  SYNC_HANDOFF_MARGIN_MS,
} from '@apigw-federation/core';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';

export interface RelayCommandDeps {
  readonly service: Pick<RelayService, 'handleFrame' | 'continueSync'>;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

export function createRelayCommandHandler(deps: RelayCommandDeps) {
  return async (
    event: MessageEvent,
    context?: Pick<Context, 'invokedFunctionArn' | 'getRemainingTimeInMillis'>,
  ): Promise<{ statusCode: number }> => {
    const budget = context && {
      self: context.invokedFunctionArn,
      budgetMs: context.getRemainingTimeInMillis() - SYNC_HANDOFF_MARGIN_MS,
    };
    if (isSyncJob(event)) {
      await deps.service.continueSync(event, budget ?? {});
      return { statusCode: 200 };
    }
    const frame = messageFrame(event);
    if (!frame) {
      deps.logger?.warn('Ignored an event that is not a WebSocket message');
      return { statusCode: 400 };
    }
    await deps.service.handleFrame(frame.connectionId, frame.body, budget);
    return { statusCode: 200 };
  };
}

const { root, logger } = functionComposition('relay-command');

export const handler = middy((event: MessageEvent, context: Context) =>
  createRelayCommandHandler({ service: root.relay().service, logger })(event, context),
).use(injectLambdaContext(logger));
