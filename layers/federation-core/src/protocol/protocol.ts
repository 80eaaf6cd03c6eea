/**
 * The relay protocol: the one source of truth for every message between the agent (relay) and a
 * control plane (WebSocket client). The relay validates commands with these schemas, the reference
 * client validates what it receives with them, and `docs/asyncapi.yaml` is generated from them
 * (`npx tsx docs/asyncapi.gen.ts`).
 *
 * - client → relay: commands `{ action, id, ... }` (route selection `$request.body.action`).
 * - relay → client: replies `{ type: 'reply', ... }`, events `{ type: 'event', ... }`, and parts
 *   `{ type: 'part', ... }` when a message exceeds API Gateway's 128 KB limit (see `framing.ts`).
 */
import { z } from 'zod';
import { formatIssues } from '../config/load.js';
import { ErrorCode } from '../errors.js';
import { EventType } from '../model.js';
import { DiscoverySourcesSchema, SubscribeRequestSchema, UnsubscribeRequestSchema } from './requests.js';

/** API Gateway WebSocket APIs cap one message at 128 KB (UTF-8 bytes of the frame). */
export const MAX_MESSAGE_BYTES = 128 * 1024;
/**
 * Commands are small; anything larger is refused before parsing (`TOO_LARGE`). A client sends each
 * command as one WebSocket frame, and API Gateway closes a connection on a client frame over 32 KB:
 * 32,000 bytes fit whether "KB" is read as 1,000 or 1,024 bytes.
 */
export const MAX_COMMAND_BYTES = 32_000;
/** The provider the agent announces in `hello`. */
export const PROVIDER = 'aws-api-gateway';

/** Codes a relay reply can carry: the core's error codes plus the protocol's own. */
export const ProtocolErrorCode = {
  ...ErrorCode,
  /** The frame is not JSON, or not a JSON object. */
  INVALID_JSON: 'INVALID_JSON',
  /** `action` is missing or not one of the commands. */
  UNKNOWN_ACTION: 'UNKNOWN_ACTION',
  /** The frame exceeds MAX_COMMAND_BYTES. */
  TOO_LARGE: 'TOO_LARGE',
} as const;
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

// ---------------------------------------------------------------------------------------------------
// Commands (client → relay)

const CommandId = z
  .string()
  .min(1)
  .max(128)
  .meta({ description: 'Chosen by the client; the reply carries it as `commandId`.' });
const Seq = z.number().int().min(0);

export const DiscoverCommandSchema = z
  .strictObject({
    action: z.literal('discover'),
    id: CommandId,
    sources: DiscoverySourcesSchema,
  })
  .meta({
    id: 'DiscoverCommand',
    title: 'discover',
    description:
      'Runs discovery now. Changes arrive as events; the reply (with the run summary) comes when the run is done.',
  });

export const SyncCommandSchema = z
  .strictObject({
    action: z.literal('sync'),
    id: CommandId,
    since: Seq.optional().meta({
      description:
        'Last event sequence the client has applied. Absent, or older than the outbox keeps: a full snapshot.',
    }),
  })
  .meta({
    id: 'SyncCommand',
    title: 'sync',
    description:
      'Replays outbox events after `since`, or sends a snapshot (`api.upserted` per catalog entry); ends with `sync.completed`, then the reply.',
  });

export const SubscribeCommandSchema = z
  .strictObject({
    action: z.literal('subscribe'),
    id: CommandId,
    ...SubscribeRequestSchema.shape,
  })
  .meta({
    id: 'SubscribeCommand',
    title: 'subscribe',
    description: 'Creates (once) an API key on the plan’s usage plan.',
  });

export const UnsubscribeCommandSchema = z
  .strictObject({ action: z.literal('unsubscribe'), id: CommandId, ...UnsubscribeRequestSchema.shape })
  .meta({
    id: 'UnsubscribeCommand',
    title: 'unsubscribe',
    description: 'Revokes the subscription’s API key.',
  });

export const PingCommandSchema = z.strictObject({ action: z.literal('ping'), id: CommandId }).meta({
  id: 'PingCommand',
  title: 'ping',
  description:
    'Health check: agent, sources, last run. Also the keep-alive: API Gateway closes a connection idle for 10 minutes.',
});

/**
 * Every command, once: the relay's routes (`infra/constructs/relay.ts`), the local runtime's routes,
 * the AsyncAPI document and the relay's validation all derive from this list.
 */
export const COMMAND_SCHEMAS = [
  DiscoverCommandSchema,
  SyncCommandSchema,
  SubscribeCommandSchema,
  UnsubscribeCommandSchema,
  PingCommandSchema,
] as const;

export const CommandSchema = z.discriminatedUnion('action', COMMAND_SCHEMAS);
export type CommandAction = z.infer<typeof CommandSchema>['action'];

/** The commands' `action` values: one WebSocket route each (route selection `$request.body.action`). */
export const COMMAND_ACTIONS: readonly CommandAction[] = COMMAND_SCHEMAS.map(
  (schema) => schema.shape.action.value,
);

/**
 * The relay WebSocket API's route keys: `$connect` and `$disconnect` (relay-connection), one route per
 * command and `$default` for any other frame (relay-command, which answers UNKNOWN_ACTION).
 */
export const RELAY_ROUTE_KEYS = {
  connection: ['$connect', '$disconnect'],
  command: [...COMMAND_ACTIONS, '$default'],
} as const satisfies Record<string, readonly string[]>;

export type DiscoverCommand = z.infer<typeof DiscoverCommandSchema>;
export type SyncCommand = z.infer<typeof SyncCommandSchema>;
export type SubscribeCommand = z.infer<typeof SubscribeCommandSchema>;
export type UnsubscribeCommand = z.infer<typeof UnsubscribeCommandSchema>;
export type PingCommand = z.infer<typeof PingCommandSchema>;
export type Command = z.infer<typeof CommandSchema>;
/** A command as a caller builds it (the client fills `id` in when absent). */
export type CommandInput = Command extends infer C
  ? C extends Command
    ? Omit<C, 'id'> & { id?: string }
    : never
  : never;

// ---------------------------------------------------------------------------------------------------
// Replies (relay → client)

export const ReplySchema = z
  .strictObject({
    type: z.literal('reply'),
    commandId: z
      .string()
      .nullable()
      .meta({ description: 'The command’s `id`; null when the frame was not a command with an id.' }),
    status: z.enum(['SUCCEEDED', 'FAILED']),
    payload: z.unknown().optional(),
    error: z
      .strictObject({
        code: z.enum(Object.values(ProtocolErrorCode) as [ProtocolErrorCode, ...ProtocolErrorCode[]]),
        message: z.string(),
        details: z.record(z.string(), z.unknown()).optional(),
      })
      .optional(),
  })
  .meta({ id: 'Reply', title: 'reply', description: 'Outcome of one command.' });
export type Reply = z.infer<typeof ReplySchema>;

// ---------------------------------------------------------------------------------------------------
// Events (relay → client)

const SourceRefSchema = z
  .object({
    name: z.string(),
    accountId: z.string(),
    region: z.string(),
    restApiId: z.string(),
    stageName: z.string(),
    deploymentId: z.string(),
  })
  .meta({ id: 'ApiSource' });

const PlanSchema = z
  .object({
    id: z.string(),
    usagePlanId: z.string(),
    name: z.string(),
    description: z.string().optional(),
    security: z.literal('API_KEY'),
    throttle: z.object({ rateLimit: z.number().optional(), burstLimit: z.number().optional() }).optional(),
    quota: z
      .object({
        limit: z.number().optional(),
        offset: z.number().optional(),
        period: z.enum(['DAY', 'WEEK', 'MONTH']).optional(),
      })
      .optional(),
  })
  .meta({ id: 'Plan' });

const DefinitionSchema = z
  .object({
    format: z.enum(['openapi-3.0', 'swagger-2.0', 'unknown']),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    size: z.number().int().optional(),
    document: z.unknown().meta({ description: 'The parsed OpenAPI/Swagger document.' }),
  })
  .meta({ id: 'Definition' });

/** The catalog's types (`model.ts`, the shape these schemas put on the wire), for the control plane's side. */
export type { FederatedApi, FederatedPlan } from '../model.js';

export const FederatedApiSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    version: z.string().meta({ description: 'The stage name.' }),
    description: z.string().optional(),
    source: SourceRefSchema,
    endpoint: z.string(),
    labels: z.array(z.string()),
    plans: z.array(PlanSchema),
    definition: DefinitionSchema.optional(),
    definitionUnavailable: z
      .object({ code: z.literal('EXPORT_REFUSED'), message: z.string(), deploymentId: z.string() })
      .optional()
      .meta({
        description:
          'Instead of `definition` when API Gateway refuses to export this deployment (a 4xx such as BadRequestException); tried again when the deployment changes.',
      }),
    fingerprint: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'FederatedApi', description: 'One deployed REST API stage.' });

export const HelloPayloadSchema = z
  .object({
    agentId: z.string(),
    provider: z.literal(PROVIDER),
    version: z.string(),
    sources: z.array(
      z.object({ name: z.string(), accountId: z.string().optional(), regions: z.array(z.string()) }),
    ),
  })
  .meta({ id: 'HelloPayload' });

export const ApiRemovedPayloadSchema = z
  .object({ id: z.string(), source: SourceRefSchema })
  .meta({ id: 'ApiRemovedPayload' });

export const PlanRemovedPayloadSchema = z
  .object({
    apiId: z.string(),
    planId: z.string(),
    usagePlanId: z.string(),
    subscriptionIds: z.array(z.string()),
    part: z.number().int().optional().meta({
      description: 'With many subscriptions the list is split: this event is part `part` of `parts`.',
    }),
    parts: z.number().int().optional(),
  })
  .meta({ id: 'PlanRemovedPayload' });

export const SubscriptionRevokedPayloadSchema = z
  .object({
    subscriptionId: z.string(),
    apiId: z.string(),
    planId: z.string(),
    reason: z.string(),
    keyDeleted: z
      .boolean()
      .optional()
      .meta({
        description:
          'true: the subscription’s API key no longer exists in API Gateway (since `keyDeletedAt`). false: ' +
          'revoked in the ledger, the key is still to be deleted; a later `subscription.revoked` of the same ' +
          'subscription with `keyDeleted: true` says when it is gone (a plan removal: the subscriptions function deletes it).',
      }),
    keyDeletedAt: z
      .string()
      .optional()
      .meta({ description: 'When the key was found deleted (ISO 8601), with `keyDeleted: true`.' }),
  })
  .meta({ id: 'SubscriptionRevokedPayload' });

/**
 * Account-regions a run summary lists (`discovery.completed`, the `discover` reply, the `RUN#` record): the
 * summary is one DynamoDB item, at most 400 KB, and one entry is about 270 bytes. The rest are counted.
 */
export const RUN_SUMMARY_ACCOUNT_REGIONS_MAX = 500;

/**
 * Account ids a run summary lists in `organization.withoutRole` (the accounts of an organisation scope
 * where the agent's role could not be assumed): 13 bytes each in the summary's DynamoDB item; the rest
 * are counted (`withoutRoleCount`).
 */
export const RUN_SUMMARY_WITHOUT_ROLE_MAX = 1_000;

/** The organisation part of a fanned-out run's summary; further fields pass through. */
const RunOrganizationSchema = z
  .looseObject({
    accounts: z
      .number()
      .int()
      .min(0)
      .optional()
      .meta({ description: 'Accounts listed in the organisation scopes of the run.' }),
    withoutRole: z
      .array(z.string())
      .optional()
      .meta({
        description:
          'Accounts where the agent’s role could not be assumed (their account-regions `failed`, ' +
          `AWS_ACCESS_DENIED), sorted: at most ${RUN_SUMMARY_WITHOUT_ROLE_MAX} (DynamoDB’s 400 KB item limit); ` +
          '`withoutRoleCount` counts them all.',
      }),
    withoutRoleCount: z.number().int().min(0).optional().meta({
      description:
        'Every account without the role, also those `withoutRole` does not list (absent from agents before the bound: count `withoutRole`).',
    }),
  })
  .meta({
    id: 'RunOrganization',
    description: 'With organisation sources: the accounts listed and those without the agent’s role.',
  });

/** One account-region of a run summary (`AccountRegionSummary`); further fields pass through. */
const RunAccountRegionSchema = z
  .looseObject({
    source: z.string(),
    accountId: z.string().optional(),
    region: z.string(),
    status: z.string().meta({ description: '`complete`, `partial`, `failed` or `busy`.' }),
  })
  .meta({ id: 'RunAccountRegion', description: 'One account-region: status, counts, API calls, duration.' });

/** The run summary; its exact fields belong to discovery, so unknown fields pass through. */
export const RunSummarySchema = z
  .looseObject({
    runId: z.string().optional(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
    durationMs: z.number().optional(),
    partial: z.boolean().optional(),
    accountRegions: z
      .array(RunAccountRegionSchema)
      .optional()
      .meta({
        description:
          `At most ${RUN_SUMMARY_ACCOUNT_REGIONS_MAX} account-regions (DynamoDB’s 400 KB item limit): every one ` +
          `in a run of ${RUN_SUMMARY_ACCOUNT_REGIONS_MAX} or fewer, in run order; in a larger run those that were ` +
          'not complete first, then complete ones. `accountRegionCount` and `accountRegionsByStatus` count them all.',
      }),
    accountRegionCount: z.number().int().min(0).optional().meta({
      description:
        'Every account-region of the run, also those `accountRegions` does not list (absent from agents before the bound: count `accountRegions`).',
    }),
    accountRegionsByStatus: z
      .record(z.string(), z.number().int().min(0))
      .optional()
      .meta({ description: 'Every account-region of the run by status (complete, partial, failed, busy).' }),
    errorCount: z
      .number()
      .int()
      .min(0)
      .optional()
      .meta({ description: 'Every error of the run; `errors` lists the first 100 in full.' }),
    organization: RunOrganizationSchema.optional(),
  })
  .meta({
    id: 'RunSummary',
    description:
      'Discovery run summary (counts, API calls, duration, account-regions, errors); the `discover` reply carries the same.',
  });

export const SyncCompletedPayloadSchema = z
  .object({
    seq: Seq.meta({ description: 'The client’s new cursor: the next `sync` should pass it as `since`.' }),
    snapshot: z.boolean().optional().meta({ description: 'True when a full snapshot was sent.' }),
  })
  .meta({ id: 'SyncCompletedPayload' });

const eventSeq = Seq.meta({
  description:
    'Outbox sequence; 0 for events that are not in the outbox (hello, sync.completed, snapshot entries).',
});

function eventSchema<E extends EventType, P extends z.ZodType>(event: E, payload: P, description: string) {
  return z
    .strictObject({ type: z.literal('event'), seq: eventSeq, event: z.literal(event), payload })
    .meta({ id: `Event_${event.replace('.', '_')}`, title: event, description });
}

export const HelloEventSchema = eventSchema(EventType.HELLO, HelloPayloadSchema, 'Sent once on connect.');
export const ApiUpsertedEventSchema = eventSchema(
  EventType.API_UPSERTED,
  FederatedApiSchema,
  'A federated API appeared or changed; carries the whole API and its definition.',
);
export const ApiRemovedEventSchema = eventSchema(
  EventType.API_REMOVED,
  ApiRemovedPayloadSchema,
  'A federated API disappeared (only reported after a complete read of its account-region).',
);
export const PlanRemovedEventSchema = eventSchema(
  EventType.PLAN_REMOVED,
  PlanRemovedPayloadSchema,
  'A usage plan is no longer attached; lists the subscriptions on it.',
);
export const DiscoveryCompletedEventSchema = eventSchema(
  EventType.DISCOVERY_COMPLETED,
  RunSummarySchema,
  'A discovery run finished.',
);
export const SubscriptionRevokedEventSchema = eventSchema(
  EventType.SUBSCRIPTION_REVOKED,
  SubscriptionRevokedPayloadSchema,
  'A subscription was revoked by the agent (e.g. its usage plan was removed).',
);
export const SyncCompletedEventSchema = eventSchema(
  EventType.SYNC_COMPLETED,
  SyncCompletedPayloadSchema,
  'End of a sync replay or snapshot.',
);

/** Every event the relay sends, once: the AsyncAPI document and the client's validation derive from it. */
export const EVENT_SCHEMAS = [
  HelloEventSchema,
  ApiUpsertedEventSchema,
  ApiRemovedEventSchema,
  PlanRemovedEventSchema,
  DiscoveryCompletedEventSchema,
  SubscriptionRevokedEventSchema,
  SyncCompletedEventSchema,
] as const;

export const EventMessageSchema = z.discriminatedUnion('event', EVENT_SCHEMAS);
export type EventMessage = z.infer<typeof EventMessageSchema>;

// ---------------------------------------------------------------------------------------------------
// Parts (relay → client)

export const PartSchema = z
  .strictObject({
    type: z.literal('part'),
    messageId: z.string().min(1).max(64),
    index: z.number().int().min(0),
    count: z.number().int().min(2).max(10_000),
    data: z.string().meta({ description: 'Base64 of one slice of the gzip of the whole message.' }),
  })
  .meta({
    id: 'Part',
    title: 'part',
    description:
      'A slice of a message larger than 128 KB: the gzip bytes of the message are cut into `count` slices; join them in `index` order and gunzip.',
  });
export type Part = z.infer<typeof PartSchema>;

/** Anything the relay sends. A whole message is a reply or an event; a part carries a slice of one. */
export const ServerMessageSchema = z.union([ReplySchema, EventMessageSchema, PartSchema]);
export type ServerMessage = z.infer<typeof ServerMessageSchema>;
/** A reply or an event: what a part reassembles to. */
export type WholeMessage = Reply | EventMessage;

// ---------------------------------------------------------------------------------------------------
// Helpers

export type CommandParseResult =
  | { ok: true; command: Command }
  | { ok: false; commandId: string | null; code: ProtocolErrorCode; message: string };

/**
 * Validates a raw frame from a client. Never throws: every failure becomes a stable code and a
 * message naming the field, so the relay can answer with a FAILED reply and do nothing else.
 */
export function parseCommand(
  body: string | undefined | null,
  maxBytes = MAX_COMMAND_BYTES,
): CommandParseResult {
  const text = body ?? '';
  const size = Buffer.byteLength(text, 'utf8');
  if (size > maxBytes) {
    return {
      ok: false,
      commandId: null,
      code: ProtocolErrorCode.TOO_LARGE,
      message: `Command is ${size} bytes; the limit is ${maxBytes}`,
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return {
      ok: false,
      commandId: null,
      code: ProtocolErrorCode.INVALID_JSON,
      message: `Command is not valid JSON: ${(error as Error).message}`,
    };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return {
      ok: false,
      commandId: null,
      code: ProtocolErrorCode.INVALID_JSON,
      message: 'Command must be a JSON object like {"action": "ping", "id": "1"}',
    };
  }
  const raw = json as Record<string, unknown>;
  const commandId = typeof raw.id === 'string' && raw.id.length > 0 && raw.id.length <= 128 ? raw.id : null;
  if (typeof raw.action !== 'string' || !(COMMAND_ACTIONS as readonly string[]).includes(raw.action)) {
    return {
      ok: false,
      commandId,
      code: ProtocolErrorCode.UNKNOWN_ACTION,
      message: `Unknown action ${JSON.stringify(raw.action ?? null)}: expected one of ${COMMAND_ACTIONS.join(', ')}`,
    };
  }
  const result = CommandSchema.safeParse(raw);
  if (!result.success) {
    return {
      ok: false,
      commandId,
      code: ProtocolErrorCode.VALIDATION,
      message: `Invalid ${raw.action} command: ${formatIssues(result.error, '', { received: false })}`,
    };
  }
  return { ok: true, command: result.data };
}

/** Builds a reply message. */
export function replyMessage(
  commandId: string | null,
  outcome:
    | { status: 'SUCCEEDED'; payload?: unknown }
    | {
        status: 'FAILED';
        error: { code: ProtocolErrorCode; message: string; details?: Record<string, unknown> };
      },
): Reply {
  return outcome.status === 'SUCCEEDED'
    ? outcome.payload === undefined
      ? { type: 'reply', commandId, status: 'SUCCEEDED' }
      : { type: 'reply', commandId, status: 'SUCCEEDED', payload: outcome.payload }
    : { type: 'reply', commandId, status: 'FAILED', error: outcome.error };
}

/** Builds an event message (`seq` 0 for events that are not in the outbox). */
export function eventMessage(event: EventType, payload: unknown, seq = 0): EventMessage {
  return { type: 'event', seq, event, payload } as EventMessage;
}
