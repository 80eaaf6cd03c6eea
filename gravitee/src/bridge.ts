/**
 * The Gravitee bridge: Gravitee's integration controller on one side (`connector.ts`), this agent's
 * relay on the other (the reference control-plane client: catalog sync, part reassembly, reconnect).
 * Stateless: the catalog it answers DISCOVER and INGEST from is the relay's, kept in memory by the
 * client; subscriptions go to the relay's `subscribe` / `unsubscribe`, which are idempotent.
 */
import {
  type CatalogApi,
  ClientError,
  ControlPlaneClient,
  type ReconnectOptions,
} from '../../client/control-plane-client.js';
import type { EventMessage, Reply } from '../../layers/federation-core/src/protocol/protocol.js';
import type { BridgeConfig } from './config.js';
import {
  type BackoffOptions,
  type CommandHandler,
  GraviteeConnector,
  type HandlerResult,
  noHandlerReply,
} from './connector.js';
import {
  CommandStatus,
  type ExchangeCommand,
  ExchangeType,
  encodeReply,
  envelopeBytes,
  failed,
  succeeded,
} from './exchange.js';
import type { Log } from './log.js';
import {
  type CatalogEntry,
  type GraviteeApi,
  ingestBatches,
  SubscriptionInputError,
  toGraviteeApi,
  toRelaySubscribe,
  toRelayUnsubscribe,
  toSubscriptionResult,
} from './mapping.js';

/** INGEST batches: at most this many bytes of APIs per message (well inside the 13,107,200-byte limit). */
export const INGEST_BATCH_BYTES = 8 * 1024 * 1024;
/** Relay requests answer within this, so Gravitee (which waits 60 s) always gets a reply. */
export const RELAY_REQUEST_TIMEOUT_MS = 50_000;
/** A `sync` snapshot of a large catalog takes as long as the relay needs to send it. */
export const RELAY_SYNC_TIMEOUT_MS = 15 * 60_000;
/**
 * A relay `ping` this often while the link is up: API Gateway closes a WebSocket connection idle for
 * 10 minutes, and only client messages count.
 */
export const RELAY_KEEPALIVE_MS = 5 * 60_000;
/** Room kept in a message for the envelope and ids beyond the payload JSON. */
const SLACK_BYTES = 4096;

export interface BridgeOptions {
  readonly config: BridgeConfig;
  readonly log: Log;
  /** Gravitee side reconnect backoff (default Gravitee's: 1 s ×1.5 up to 5 min). */
  readonly backoff?: BackoffOptions;
  /** Relay side reconnect (default 1 s doubling up to 60 s, with jitter). */
  readonly relayReconnect?: ReconnectOptions;
  readonly pingIntervalMs?: number;
  readonly replyTimeoutMs?: number;
  readonly ingestBatchBytes?: number;
  readonly relayRequestTimeoutMs?: number;
  /** Interval of the relay keep-alive `ping` (default 5 min). */
  readonly relayKeepaliveMs?: number;
}

export interface Bridge {
  readonly connector: GraviteeConnector;
  readonly relay: ControlPlaneClient;
  /** Resolves with the reason when Gravitee refuses the integration (HELLO ERROR). */
  readonly fatal: Promise<string>;
  health(): { healthy: boolean; detail: string };
  /** The controller → agent command handler (what the connector calls for DISCOVER, SUBSCRIBE, ...). */
  readonly handle: CommandHandler;
  /** Resolves once the relay's catalog has been received. */
  readonly synced: Promise<void>;
  stop(): Promise<void>;
}

/** Starts both links (each retries on its own) and returns at once. */
export function startBridge(options: BridgeOptions): Bridge {
  const { config, log } = options;
  const relayReconnect = options.relayReconnect ?? { initialDelayMs: 1_000, maxDelayMs: 60_000 };
  const requestTimeoutMs = options.relayRequestTimeoutMs ?? RELAY_REQUEST_TIMEOUT_MS;
  const relay = new ControlPlaneClient({
    url: config.relayUrl,
    token: config.relayToken,
    reconnect: relayReconnect,
    // The client's default timeout applies to its own `sync`; every other request passes its own.
    requestTimeoutMs: RELAY_SYNC_TIMEOUT_MS,
  });
  let stopped = false;
  let everSynced = false;
  let relayDownSince: Date | undefined = new Date();
  let lastRun: { partial?: boolean; finishedAt?: string } | undefined;
  let resolveSynced!: () => void;
  const synced = new Promise<void>((resolve) => {
    resolveSynced = resolve;
  });

  relay.on('error', (error: Error) => log.warn(`relay: ${error.message}`));
  relay.on('open', () => {
    relayDownSince = undefined;
    log.info(`relay link up (${config.relayUrl})`);
  });
  relay.on('close', ({ code }: { code: number }) => {
    if (stopped) return;
    relayDownSince = new Date();
    log.warn(`relay link down (${code}): reconnecting`);
  });
  relay.on('reconnecting', ({ attempt, delayMs }: { attempt: number; delayMs: number }) =>
    log.info(`relay: reconnect attempt ${attempt} in ${(delayMs / 1000).toFixed(1)} s`),
  );
  relay.on('event', (event: EventMessage) => {
    if (event.event === 'discovery.completed') lastRun = event.payload as typeof lastRun;
  });
  /** `ping`: the last run (for isPartialDiscovery; events only carry the runs that follow a snapshot). */
  const ping = (): void => {
    relay
      .request({ action: 'ping' }, { timeoutMs: requestTimeoutMs })
      .then((reply) => {
        const run = (reply.payload as { lastRun?: typeof lastRun } | undefined)?.lastRun;
        const newer = !lastRun || (run?.finishedAt ?? '') > (lastRun.finishedAt ?? '');
        if (reply.status === 'SUCCEEDED' && run && newer) lastRun = run;
      })
      .catch(() => undefined);
  };
  relay.on('synced', ({ seq, snapshot }: { seq: number; snapshot: boolean }) => {
    everSynced = true;
    resolveSynced();
    log.info(`relay: catalog ${snapshot ? 'snapshot' : 'replay'} to #${seq}, ${relay.catalog.size} APIs`);
    ping();
  });
  const keepalive = setInterval(() => {
    if (relay.connected) ping();
  }, options.relayKeepaliveMs ?? RELAY_KEEPALIVE_MS);

  const health = (): { healthy: boolean; detail: string } => {
    if (relay.connected && everSynced) {
      return { healthy: true, detail: `relay link up, ${relay.catalog.size} APIs in the catalog` };
    }
    return {
      healthy: false,
      detail: relay.connected
        ? 'relay link up, catalog not received yet'
        : `relay link down${relayDownSince ? ` since ${relayDownSince.toISOString()}` : ''}: reconnecting`,
    };
  };

  let connector!: GraviteeConnector;
  const catalogEntries = (): CatalogEntry[] =>
    ([...relay.catalog.values()] as unknown as CatalogEntry[]).sort(
      (a, b) =>
        a.name.localeCompare(b.name) || a.version.localeCompare(b.version) || a.id.localeCompare(b.id),
    );

  const discover = (command: ExchangeCommand): HandlerResult => {
    if (!everSynced) {
      return {
        reply: failed(
          command,
          'UNAVAILABLE: the catalog has not been received from the relay yet (relay link down?)',
        ),
      };
    }
    const started = Date.now();
    let apis: GraviteeApi[] = catalogEntries().map((api) => toGraviteeApi(api));
    let partial = lastRun?.partial === true;
    const budget = config.maxMessageBytes - envelopeBytes('REPLY', ExchangeType.DISCOVER) - SLACK_BYTES;
    let reply = succeeded(command, { apis, isPartialDiscovery: partial });
    let size = encodeReply(reply).length;
    if (size > budget) {
      // Cannot be split: answer with what fits, flagged partial so Gravitee removes nothing.
      let bytes = 2;
      const kept: GraviteeApi[] = [];
      for (const api of apis) {
        const n = Buffer.byteLength(JSON.stringify(api), 'utf8') + 1;
        if (bytes + n > budget - 64) break;
        bytes += n;
        kept.push(api);
      }
      log.warn(
        `DISCOVER: ${apis.length} APIs do not fit one message (${size} bytes); answering with ${kept.length}, partial`,
      );
      apis = kept;
      partial = true;
      reply = succeeded(command, { apis, isPartialDiscovery: partial });
      size = encodeReply(reply).length;
    }
    log.info(
      `DISCOVER: ${apis.length} APIs${partial ? ' (partial)' : ''}, ${size} bytes, ${Date.now() - started} ms`,
    );
    return { reply };
  };

  const pushIngest = async (ingestJobId: string, selected: CatalogEntry[]): Promise<void> => {
    const maxApiBytes = config.maxMessageBytes - envelopeBytes('COMMAND', ExchangeType.INGEST) - SLACK_BYTES;
    const budget = Math.min(options.ingestBatchBytes ?? INGEST_BATCH_BYTES, maxApiBytes);
    const batches = ingestBatches(selected, budget, maxApiBytes, (api, bytes) =>
      log.warn(`INGEST ${ingestJobId}: ${api.id} is ${bytes} bytes with its OpenAPI page: sent without it`),
    );
    for (let i = 0; i < batches.length; i++) {
      const done = i === batches.length - 1;
      try {
        const reply = await connector.send(ExchangeType.INGEST, {
          ingestJobId,
          apis: batches[i]!.apis,
          done,
        });
        if (reply.commandStatus !== CommandStatus.SUCCEEDED) {
          log.error(
            `INGEST ${ingestJobId}: batch ${i + 1}/${batches.length} refused: ${reply.errorDetails ?? 'ERROR'}`,
          );
          return;
        }
      } catch (error) {
        log.error(
          `INGEST ${ingestJobId}: batch ${i + 1}/${batches.length} failed: ${(error as Error).message}`,
        );
        return;
      }
    }
    log.info(`INGEST ${ingestJobId}: ${selected.length} APIs in ${batches.length} batch(es), done`);
  };

  const startIngest = (command: ExchangeCommand): HandlerResult => {
    const ingestJobId = command.payload.ingestJobId;
    if (typeof ingestJobId !== 'string' || ingestJobId === '') {
      return { reply: failed(command, 'VALIDATION: ingestJobId is missing') };
    }
    if (!everSynced) {
      return { reply: failed(command, 'UNAVAILABLE: the catalog has not been received from the relay yet') };
    }
    const ids = Array.isArray(command.payload.apiIds)
      ? (command.payload.apiIds as unknown[]).filter((id): id is string => typeof id === 'string')
      : [];
    const all = catalogEntries();
    let selected: CatalogEntry[];
    if (ids.length === 0) selected = all;
    else {
      const byId = new Map(all.map((api) => [api.id, api]));
      selected = ids.flatMap((id) => byId.get(id) ?? []);
      const missing = ids.length - selected.length;
      if (missing > 0)
        log.warn(`START_INGEST ${ingestJobId}: ${missing} of ${ids.length} APIs are not in the catalog`);
    }
    log.info(`START_INGEST ${ingestJobId}: ${selected.length} APIs`);
    return {
      reply: succeeded(command, { ingestJobId, total: selected.length }),
      afterReply: () => void pushIngest(ingestJobId, selected),
    };
  };

  const relayFailure = (command: ExchangeCommand, reply: Reply): HandlerResult => ({
    reply: failed(
      command,
      `${reply.error?.code ?? 'INTERNAL'}: ${reply.error?.message ?? 'the relay answered FAILED'}`,
    ),
  });

  const relayRequest = async (
    command: ExchangeCommand,
    request: Parameters<ControlPlaneClient['request']>[0],
  ): Promise<Reply | HandlerResult> => {
    if (!relay.connected) {
      return { reply: failed(command, 'UNAVAILABLE: the relay link is down; retry later') };
    }
    try {
      return await relay.request(request, { timeoutMs: requestTimeoutMs });
    } catch (error) {
      return {
        reply: failed(
          command,
          `UNAVAILABLE: ${error instanceof ClientError ? error.message : String(error)}`,
        ),
      };
    }
  };

  /**
   * Forwards a subscription command to the relay: maps its payload (`toRelay`; a bad input is a
   * FAILED reply), sends it, logs and maps a FAILED answer, and hands a SUCCEEDED one to `done`.
   */
  const forwardSubscription = async <
    R extends Parameters<ControlPlaneClient['request']>[0] & { subscriptionId: string },
  >(
    command: ExchangeCommand,
    verb: 'SUBSCRIBE' | 'UNSUBSCRIBE',
    toRelay: (payload: ExchangeCommand['payload']) => R,
    done: (request: R, answer: Reply) => HandlerResult,
  ): Promise<HandlerResult> => {
    let request: R;
    try {
      request = toRelay(command.payload);
    } catch (error) {
      if (error instanceof SubscriptionInputError)
        return { reply: failed(command, `${error.code}: ${error.message}`) };
      throw error;
    }
    const answer = await relayRequest(command, request);
    if (!('type' in answer)) return answer;
    if (answer.status === 'FAILED') {
      log.warn(`${verb} ${request.subscriptionId}: ${answer.error?.code} ${answer.error?.message}`);
      return relayFailure(command, answer);
    }
    return done(request, answer);
  };

  const subscribe = (command: ExchangeCommand): Promise<HandlerResult> =>
    forwardSubscription(command, 'SUBSCRIBE', toRelaySubscribe, (request, answer) => {
      const payload = answer.payload as {
        apiKeyId: string;
        apiKey: string;
        usagePlanId: string;
        planId?: string;
      };
      const api = relay.catalog.get(request.apiId) as CatalogApi | undefined;
      log.info(
        `SUBSCRIBE ${request.subscriptionId}: key ${payload.apiKeyId} on usage plan ${payload.usagePlanId} (plan ${request.planId} of ${request.apiId})`,
      );
      return {
        reply: succeeded(command, {
          subscription: toSubscriptionResult(
            request.subscriptionId,
            payload,
            api as unknown as CatalogEntry | undefined,
          ),
        }),
      };
    });

  const unsubscribe = (command: ExchangeCommand): Promise<HandlerResult> =>
    forwardSubscription(command, 'UNSUBSCRIBE', toRelayUnsubscribe, (request) => {
      log.info(`UNSUBSCRIBE ${request.subscriptionId}: revoked`);
      return { reply: succeeded(command, {}) };
    });

  const handle: CommandHandler = async (command) => {
    switch (command.type) {
      case ExchangeType.DISCOVER:
        return discover(command);
      case ExchangeType.START_INGEST:
        return startIngest(command);
      case ExchangeType.SUBSCRIBE:
        return subscribe(command);
      case ExchangeType.UNSUBSCRIBE:
        return unsubscribe(command);
      default:
        log.warn(`no handler for command type ${command.type}: answered NO_REPLY`);
        return { reply: noHandlerReply(command) };
    }
  };

  let resolveFatal!: (reason: string) => void;
  const fatal = new Promise<string>((resolve) => {
    resolveFatal = resolve;
  });
  connector = new GraviteeConnector({
    config,
    log,
    handle,
    health,
    onFatal: (reason) => resolveFatal(reason),
    ...(options.backoff ? { backoff: options.backoff } : {}),
    ...(options.pingIntervalMs ? { pingIntervalMs: options.pingIntervalMs } : {}),
    ...(options.replyTimeoutMs ? { replyTimeoutMs: options.replyTimeoutMs } : {}),
  });

  // The relay: connect() fails fast (no retry) on the first attempt; retry it here until it works,
  // after which the client reconnects by itself.
  let relayRetry: NodeJS.Timeout | undefined;
  const connectRelay = (attempt: number): void => {
    if (stopped) return;
    relay.connect().catch((error: Error) => {
      if (stopped) return;
      if (relay.connected) {
        // Connected, but the first sync did not answer in time: the client keeps the link (and
        // reconnects it); another connect() would open a second one.
        log.warn(`relay: ${error.message}; keeping the link`);
        return;
      }
      const initial = relayReconnect.initialDelayMs ?? 1_000;
      const delay = Math.min(relayReconnect.maxDelayMs ?? 60_000, initial * 2 ** (attempt - 1));
      log.warn(`relay: ${error.message}; retrying in ${(delay / 1000).toFixed(1)} s`);
      relayRetry = setTimeout(() => connectRelay(attempt + 1), delay);
    });
  };
  connectRelay(1);
  connector.start();

  return {
    connector,
    relay,
    fatal,
    health,
    handle,
    synced,
    async stop() {
      stopped = true;
      clearTimeout(relayRetry);
      clearInterval(keepalive);
      await Promise.all([connector.stop(), relay.close()]);
    },
  };
}
