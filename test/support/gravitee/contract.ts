/**
 * The test harness's stand-in for Gravitee APIM's integration controller: its public surface.
 *
 * The implementation (`controller.ts` beside this file) is written from Gravitee's public sources
 * (`gravitee-io/gravitee-exchange`: V1ProtocolAdapter, AbstractWebSocketChannel, the command and
 * reply classes, WebSocketControllerServerConfiguration; `gravitee-io/gravitee-integration-api`:
 * command/**, model/**), never from this project's bridge. Tests of the bridge use only this surface.
 */

/** One exchange as the v1 protocol carries it: `t:<COMMAND|REPLY>;;et:<type>;;e:<json>`. */
export interface ExchangeCommand {
  id: string;
  type: string;
  payload: Record<string, unknown>;
}

export interface ExchangeReply {
  commandId: string;
  type: string;
  commandStatus: 'SUCCEEDED' | 'ERROR';
  errorDetails?: string;
  payload?: Record<string, unknown>;
}

export interface GraviteeControllerOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Bearer tokens accepted on the upgrade (`Authorization: bearer <token>`); others get 401. */
  tokens: string[];
  /** Integration ids the controller knows, with their provider; a HELLO for another id, or with
   * another provider, gets an ERROR reply as APIM gives it. */
  integrations: Record<string, { provider: string }>;
  /** Interval of HEALTH_CHECK commands; Gravitee's default is about 30 s, tests set it small. */
  healthCheckIntervalMs?: number;
  /** How long the controller waits for a reply (Gravitee: 60 s). */
  replyTimeoutMs?: number;
}

/** What the controller recorded of the protocol being broken (for assertions). */
export interface ProtocolViolation {
  kind:
    | 'text-frame' // closed 1003
    | 'frame-too-large' // closed 1009
    | 'message-too-large'
    | 'missing-protocol-header'
    | 'unauthorized' // upgrade refused 401
    | 'malformed-exchange'
    | 'command-before-hello';
  detail: string;
}

/** One connected, HELLO-accepted agent. */
export interface AgentSession {
  readonly targetId: string;
  /** The HELLO command's payload as the agent sent it. */
  readonly hello: Record<string, unknown>;
  /** Request headers of the upgrade (lower-case names). */
  readonly headers: Record<string, string>;
  /** Sends a controller → agent command and resolves with the agent's reply (rejects after replyTimeoutMs). */
  send(type: string, payload?: Record<string, unknown>): Promise<ExchangeReply>;
  /** Every command the agent sent after HELLO (e.g. INGEST), in order; the controller replies SUCCEEDED to each. */
  readonly agentCommands: ExchangeCommand[];
  /** Resolves with the next agent command of this type (already received ones first). */
  nextAgentCommand(type: string, timeoutMs?: number): Promise<ExchangeCommand>;
  /** HEALTH_CHECK replies received, in order. */
  readonly healthReplies: ExchangeReply[];
  /** Resolves with the next HEALTH_CHECK reply. */
  nextHealthReply(timeoutMs?: number): Promise<ExchangeReply>;
  /** Largest WebSocket frame (bytes) and message (bytes) the agent sent. */
  readonly maxFrameBytes: number;
  readonly maxMessageBytes: number;
  /** Sends GOOD_BYE {targetId, reconnect} and closes the socket as the controller does. */
  goodBye(reconnect: boolean): Promise<void>;
  /** Closes the socket abruptly (as a controller restart would). */
  drop(): void;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
}

export interface GraviteeController {
  /** What a user sets as `gravitee_integration_connector_ws_endpoints_0`: `http://127.0.0.1:<port>/integration-controller`. */
  readonly endpoint: string;
  /** Resolves with the next agent session whose HELLO was accepted. */
  nextSession(timeoutMs?: number): Promise<AgentSession>;
  /** Agent status as APIM shows it: CONNECTED after an accepted HELLO and healthy checks, else DISCONNECTED. */
  status(targetId: string): 'CONNECTED' | 'DISCONNECTED';
  /** Upgrade attempts seen (accepted or refused), HELLO errors sent. */
  readonly upgradeAttempts: number;
  readonly helloErrors: Array<{ targetId: string; reason: string }>;
  readonly violations: ProtocolViolation[];
  stop(): Promise<void>;
}

export type StartGraviteeController = (options: GraviteeControllerOptions) => Promise<GraviteeController>;
