/**
 * One definition of each protocol element: the relay's routes (CDK), the local runtime's routes, the
 * AsyncAPI document and the functions' validation all derive from the protocol's schemas.
 */
import { describe, expect, it } from 'vitest';
import { RELAY_COMMAND_ROUTES } from '../../infra/constructs/relay.js';
import {
  COMMAND_ACTIONS,
  COMMAND_SCHEMAS,
  DiscoverCommandSchema,
  DiscoveryRequestSchema,
  EVENT_SCHEMAS,
  EventType,
  RELAY_ROUTE_KEYS,
  SubscribeCommandSchema,
  SubscribeRequestSchema,
  UnsubscribeCommandSchema,
  UnsubscribeRequestSchema,
} from '../../layers/federation-core/src/index.js';
import { asyncApiDocument } from '../../layers/federation-core/src/protocol/asyncapi.js';
import { relayRoutes } from '../../local/runtime.js';

describe('the protocol as the one definition', () => {
  it('gives every command a route in the CDK app and in the local runtime, and nothing else', () => {
    expect([...RELAY_COMMAND_ROUTES]).toEqual([...COMMAND_ACTIONS]);
    const routes = relayRoutes(
      { functionName: 'connection', handler: async () => undefined },
      { functionName: 'command', handler: async () => undefined },
    );
    const to = (name: string) =>
      Object.entries(routes)
        .filter(([, target]) => (target as { functionName?: string }).functionName === name)
        .map(([key]) => key)
        .sort();
    expect(to('connection')).toEqual(['$connect', '$disconnect']);
    expect(to('command')).toEqual([...COMMAND_ACTIONS, '$default'].sort());
    expect(RELAY_ROUTE_KEYS.command).toEqual([...COMMAND_ACTIONS, '$default']);
  });

  it('documents every command and every event in the AsyncAPI document', () => {
    const doc = asyncApiDocument() as {
      operations: Record<string, { title: string; action: string; messages: { $ref: string }[] }>;
    };
    const sent = Object.values(doc.operations)
      .filter((op) => op.action === 'send')
      .map((op) => op.title.replace(/^Send /, ''));
    expect(sent).toEqual([...COMMAND_ACTIONS]);
    expect(COMMAND_SCHEMAS).toHaveLength(COMMAND_ACTIONS.length);
    const received = doc.operations.receiveEvent?.messages.map((m) => m.$ref.split('/').at(-1));
    expect(received).toHaveLength(EVENT_SCHEMAS.length);
    expect(EVENT_SCHEMAS.map((e) => e.shape.event.value).sort()).toEqual(Object.values(EventType).sort());
  });

  it('validates a command with the same field schemas as the function it reaches', () => {
    for (const [command, request] of [
      [SubscribeCommandSchema, SubscribeRequestSchema],
      [UnsubscribeCommandSchema, UnsubscribeRequestSchema],
    ] as const) {
      const { action: _action, id: _id, ...fields } = command.shape;
      expect(Object.keys(fields)).toEqual(Object.keys(request.shape));
      for (const [name, schema] of Object.entries(request.shape)) {
        expect(fields[name as keyof typeof fields]).toBe(schema);
      }
    }
    expect(DiscoverCommandSchema.shape.sources).toBe(DiscoveryRequestSchema.shape.sources);
  });
});
