/**
 * The invoke ports: how one capability reaches a function that belongs to another, by name, without
 * importing its code. The composition root binds them to the Lambda invoker and the configured names.
 */
import type { FunctionInvoker } from '../aws/invoke.js';
import { ConfigError } from '../errors.js';

/** One function reached through Lambda `Invoke`. */
export interface FunctionPort {
  /** Synchronous call: the function's answer, or its typed error rethrown. */
  call(request: unknown): Promise<unknown>;
  /** Asynchronous call (`InvocationType: 'Event'`): returns once Lambda has queued it. */
  send(request: unknown): Promise<void>;
}

/**
 * Binds `invoker` to one function name. A missing name (the function is not deployed in this
 * configuration) fails each call with a CONFIG error, not the wiring.
 */
export function functionPort(invoker: FunctionInvoker, name: string | undefined, what: string): FunctionPort {
  const required = (): string => {
    if (!name) throw new ConfigError(`The relay is not configured with the ${what} function name`);
    return name;
  };
  return {
    call: async (request) => invoker.invoke(required(), request),
    send: async (request) => invoker.invokeAsync(required(), request),
  };
}
