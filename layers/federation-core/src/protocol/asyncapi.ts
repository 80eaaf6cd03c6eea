/**
 * The AsyncAPI 3.0 description of the relay protocol, generated from the zod schemas in
 * `protocol.ts` (the single source of truth). `docs/asyncapi.yaml` is this document rendered by
 * `npx tsx docs/asyncapi.gen.ts`; a test fails when the committed file differs from what the schemas
 * generate.
 */

import { Document, isScalar, visit } from 'yaml';
import { z } from 'zod';
import { MESSAGE_BUDGET_BYTES } from './framing.js';
import {
  COMMAND_SCHEMAS,
  EVENT_SCHEMAS,
  MAX_COMMAND_BYTES,
  MAX_MESSAGE_BYTES,
  PartSchema,
  ReplySchema,
} from './protocol.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function metaOf(schema: z.ZodType): { id: string; title?: string; description?: string } {
  const meta = z.globalRegistry.get(schema) as
    | { id?: string; title?: string; description?: string }
    | undefined;
  if (!meta?.id) throw new Error('protocol schema without a meta id');
  return { id: meta.id, title: meta.title, description: meta.description };
}

/** JSON Schemas (draft-07, AsyncAPI's default schema format) of the protocol, keyed by id. */
function protocolSchemas(roots: string[]): Record<string, Json> {
  const all = z.toJSONSchema(z.globalRegistry, {
    target: 'draft-7',
    uri: (id) => `#/components/schemas/${id}`,
    unrepresentable: 'any',
  }).schemas as Record<string, Record<string, Json>>;
  const out: Record<string, Json> = {};
  const visit = (id: string) => {
    if (id in out) return;
    const schema = all[id];
    if (!schema) throw new Error(`schema ${id} not generated`);
    const { $schema: _s, $id: _i, ...rest } = schema;
    out[id] = rest;
    const refs = JSON.stringify(rest).matchAll(/"#\/components\/schemas\/([^"]+)"/g);
    for (const [, ref] of refs) visit(ref as string);
  };
  for (const id of roots) visit(id);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** The AsyncAPI 3.0 document of the relay, as a plain object. */
export function asyncApiDocument(): Record<string, Json> {
  const commands = COMMAND_SCHEMAS.map(metaOf);
  const events = EVENT_SCHEMAS.map(metaOf);
  const reply = metaOf(ReplySchema);
  const part = metaOf(PartSchema);
  const message = (m: { id: string; title?: string; description?: string }, name: string): Json => ({
    name,
    title: m.title ?? name,
    ...(m.description ? { summary: m.description } : {}),
    contentType: 'application/json',
    payload: { $ref: `#/components/schemas/${m.id}` },
  });
  const messages: Record<string, Json> = {};
  for (const c of commands) messages[c.id] = message(c, c.id);
  messages[reply.id] = message(reply, reply.id);
  for (const e of events) messages[e.id] = message(e, e.id);
  messages[part.id] = message(part, part.id);
  const channelMessages = Object.fromEntries(
    Object.keys(messages).map((id) => [id, { $ref: `#/components/messages/${id}` }]),
  );
  const ref = (id: string) => ({ $ref: `#/channels/relay/messages/${id}` });
  const operations: Record<string, Json> = {};
  for (const c of commands) {
    operations[`send${c.id}`] = {
      action: 'send',
      channel: { $ref: '#/channels/relay' },
      title: `Send ${c.title}`,
      ...(c.description ? { summary: c.description } : {}),
      messages: [ref(c.id)],
      reply: { channel: { $ref: '#/channels/relay' }, messages: [ref(reply.id)] },
    };
  }
  operations.receiveEvent = {
    action: 'receive',
    channel: { $ref: '#/channels/relay' },
    title: 'Receive events',
    summary:
      'Events pushed through @connections: changes from the outbox (with their sequence), hello on connect, sync.completed after a sync.',
    messages: events.map((e) => ref(e.id)),
  };
  operations.receivePart = {
    action: 'receive',
    channel: { $ref: '#/channels/relay' },
    title: 'Receive parts',
    summary: `Any reply or event whose JSON exceeds ${MESSAGE_BUDGET_BYTES} bytes (a margin under API Gateway's ${MAX_MESSAGE_BYTES}) arrives as parts: gzip of the message, cut into slices, each base64 in one part within that budget. Join by index, gunzip, parse.`,
    messages: [ref(part.id)],
  };
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'apigw-federation relay',
      version: '1.0.0',
      description:
        'The WebSocket protocol between the apigw-federation agent (an Amazon API Gateway WebSocket API, the relay) and an API-management control plane (the client). The client sends commands routed by `$request.body.action`; the agent answers each with a reply and pushes events. ' +
        `Limits (API Gateway): a client frame carries at most 32 KB (a bigger one closes the connection with 1009), so a command is at most ${MAX_COMMAND_BYTES} bytes, sent as one frame; API Gateway closes a connection idle for 10 minutes, and any connection after 2 hours: a client sends \`ping\` whenever it has sent nothing for 5 minutes, and reconnects (then \`sync\` with its last \`seq\`) when closed. ` +
        'Generated from layers/federation-core/src/protocol/protocol.ts: do not edit by hand.',
    },
    defaultContentType: 'application/json',
    servers: {
      aws: {
        host: '{apiId}.execute-api.{region}.amazonaws.com',
        pathname: '/{stage}',
        protocol: 'wss',
        description: 'The deployed relay (output of the CDK stack).',
        variables: {
          apiId: { description: 'WebSocket API id.' },
          region: { description: 'AWS region of the agent.', default: 'us-east-1' },
          stage: { description: 'Stage name.', default: 'live' },
        },
        security: [{ $ref: '#/components/securitySchemes/bearer' }],
      },
      local: {
        host: '127.0.0.1:8787',
        pathname: '/local',
        protocol: 'ws',
        description: 'The local runtime (npm start).',
        security: [{ $ref: '#/components/securitySchemes/bearer' }],
      },
    },
    channels: {
      relay: {
        address: '/',
        title: 'Relay connection',
        description: 'One WebSocket connection; every message is one JSON text frame.',
        messages: channelMessages,
      },
    },
    operations,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'Authorization: Bearer <token> on the upgrade request, checked by the $connect authorizer against the relay token in Secrets Manager.',
        },
      },
      messages,
      schemas: protocolSchemas([...commands, reply, ...events, part].map((m) => m.id)),
    },
  };
}

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$.-]*$/;

/**
 * YAML of a JSON value, rendered by the `yaml` library: block style, sequences indented under their
 * key, strings double-quoted, keys plain where they can be, no line folding (stable diffs).
 */
export function toYaml(value: Json): string {
  const doc = new Document(value);
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key))
        pair.key.type = PLAIN_KEY.test(String(pair.key.value)) ? 'PLAIN' : 'QUOTE_DOUBLE';
    },
    Scalar(key, node) {
      if (key !== 'key' && typeof node.value === 'string') node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc.toString({ indentSeq: true, lineWidth: 0, flowCollectionPadding: false }).trimEnd();
}

/** `docs/asyncapi.yaml` as it must be committed. */
export function renderAsyncApiYaml(): string {
  return `# Generated by docs/asyncapi.gen.ts from layers/federation-core/src/protocol/protocol.ts. Do not edit.\n${toYaml(asyncApiDocument())}\n`;
}
