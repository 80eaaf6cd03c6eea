/**
 * The bridge's configuration: the environment variables of Gravitee's own federation agent (the seed's
 * docker-compose: `gravitee_integration_connector_ws_*`, `gravitee_integration_providers_0_*`, read as
 * Gravitee's `WebSocketClientConfiguration` reads `integration.connector.ws.*`), plus the relay's
 * `FED_RELAY_URL` and `FED_RELAY_TOKEN`. Flags override the environment. Read once, at start; every
 * problem names the variable (or flag) so the user knows what to fix, and never echoes a secret.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FRAGMENT_BYTES, MAX_MESSAGE_BYTES } from './exchange.js';

/** The only provider the bridge serves (what Gravitee calls the integration's provider). */
export const PROVIDER = 'aws-api-gateway';

export const ENV = {
  endpoint: (n: number) => `gravitee_integration_connector_ws_endpoints_${n}`,
  headerName: (n: number) => `gravitee_integration_connector_ws_headers_${n}_name`,
  headerValue: (n: number) => `gravitee_integration_connector_ws_headers_${n}_value`,
  trustAll: 'gravitee_integration_connector_ws_ssl_trustAll',
  verifyHost: 'gravitee_integration_connector_ws_ssl_verifyHost',
  truststoreType: 'gravitee_integration_connector_ws_ssl_truststore_type',
  truststorePath: 'gravitee_integration_connector_ws_ssl_truststore_path',
  truststoreContent: 'gravitee_integration_connector_ws_ssl_truststore_content',
  providerType: 'gravitee_integration_providers_0_type',
  integrationId: 'gravitee_integration_providers_0_integrationId',
  providerConfigPrefix: 'gravitee_integration_providers_0_configuration_',
  cloudToken: 'gravitee_cloud_token',
  relayUrl: 'FED_RELAY_URL',
  relayToken: 'FED_RELAY_TOKEN',
} as const;

export interface BridgeConfig {
  /** Gravitee endpoints as configured (the APIM URL ending in `/integration-controller`), tried in turn. */
  readonly endpoints: readonly URL[];
  /** Upgrade headers (`Authorization: bearer <token>`); values are secrets, never logged. */
  readonly headers: Readonly<Record<string, string>>;
  readonly integrationId: string;
  readonly provider: typeof PROVIDER;
  readonly relayUrl: string;
  readonly relayToken: string;
  readonly tls: {
    readonly trustAll: boolean;
    readonly verifyHost: boolean;
    /** PEM certificates to trust (truststore type PEM). */
    readonly ca?: string;
  };
  /** Payload bytes per WebSocket frame the bridge sends (fragmenting larger messages). */
  readonly fragmentBytes: number;
  /** Largest message the bridge sends (the controller's `maxWebSocketMessageSize`). */
  readonly maxMessageBytes: number;
  /** Settings that Gravitee's agent takes but the bridge ignores (names only, for a warning). */
  readonly ignored: readonly string[];
}

/** A missing or bad setting: exits 2 with a message starting with the variable's (or flag's) name. */
export class BridgeConfigError extends Error {
  override readonly name = 'BridgeConfigError';
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`${variable}: ${detail}`);
  }
}

export const USAGE = `usage: apigw-fed gravitee [options]

Bridges Gravitee APIM's integration controller (exchange protocol v1) and this agent's relay: a drop-in
for Gravitee's AWS API Gateway federation agent, holding no AWS credentials.

environment (the same as Gravitee's agent; flags override them):
  gravitee_integration_connector_ws_endpoints_<n>      APIM management URL ending in /integration-controller
                                                       (http, https, ws or wss; several are tried in turn)
  gravitee_integration_connector_ws_headers_<n>_name   upgrade header name, e.g. Authorization
  gravitee_integration_connector_ws_headers_<n>_value  its value, e.g. "bearer <service account token>"
  gravitee_integration_providers_0_type                must be aws-api-gateway
  gravitee_integration_providers_0_integrationId       the integration id shown by APIM
  gravitee_integration_connector_ws_ssl_trustAll       true to accept any TLS certificate (default false)
  gravitee_integration_connector_ws_ssl_verifyHost     false to skip the host name check (default true)
  gravitee_integration_connector_ws_ssl_truststore_type  PEM (with _path or _content) for a private CA
  FED_RELAY_URL                                        the deployed relay's RelayUrl output (wss://…)
  FED_RELAY_TOKEN                                      the relay token

options:
  --endpoint <url>          a Gravitee endpoint (repeatable; replaces the _endpoints_<n> variables)
  --header '<Name: value>'  an upgrade header (repeatable; replaces the _headers_<n> variables)
  --integration-id <id>     the integration id
  --relay-url <wss://…>     the relay URL
  --relay-token <token>     the relay token (prefer FED_RELAY_TOKEN: flags show in process lists)
  -h, --help                this help

exit codes: 0 stopped by SIGINT/SIGTERM, 1 Gravitee refused the integration (HELLO error), 2 bad configuration
`;

type Env = Record<string, string | undefined>;

/** Looks a variable up by its exact name, then case-insensitively (GRAVITEE_… as some platforms write it). */
function lookup(env: Env, name: string): string | undefined {
  if (env[name] !== undefined) return env[name];
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(env)) if (key.toLowerCase() === lower) return value;
  return undefined;
}

function has(env: Env, name: string): boolean {
  return lookup(env, name) !== undefined;
}

function parseBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = lookup(env, name);
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = raw.trim().toLowerCase();
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new BridgeConfigError(name, `expected true or false, received ${JSON.stringify(raw)}`);
}

/** Parses a Gravitee endpoint (http/https/ws/wss); the protocol path is appended later. */
export function parseEndpoint(raw: string, variable: string): URL {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new BridgeConfigError(
      variable,
      `not a URL: ${JSON.stringify(raw)} (expected e.g. https://apim.example.com/integration-controller)`,
    );
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) {
    throw new BridgeConfigError(
      variable,
      `unsupported scheme ${url.protocol} (expected http, https, ws or wss)`,
    );
  }
  return url;
}

function parseRelayUrl(raw: string, variable: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new BridgeConfigError(variable, `not a URL (expected the relay's wss://… RelayUrl)`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new BridgeConfigError(variable, `expected a ws:// or wss:// URL, received ${url.protocol}//…`);
  }
  return url.toString().replace(/\/$/, '');
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function parseHeaderFlag(raw: string): [string, string] {
  const colon = raw.indexOf(':');
  if (colon <= 0) throw new BridgeConfigError('--header', `expected 'Name: value'`);
  return [raw.slice(0, colon).trim(), raw.slice(colon + 1).trim()];
}

/**
 * Reads the configuration from the environment and the flags. Throws {@link BridgeConfigError}
 * (exit 2) naming the first variable that is missing or bad.
 */
export function loadBridgeConfig(argv: readonly string[], env: Env): BridgeConfig | 'help' {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        endpoint: { type: 'string', multiple: true },
        header: { type: 'string', multiple: true },
        'integration-id': { type: 'string' },
        'relay-url': { type: 'string' },
        'relay-token': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new BridgeConfigError('flags', (error as Error).message);
  }
  if (values.help) return 'help';

  if (has(env, ENV.cloudToken) && lookup(env, ENV.cloudToken)?.trim()) {
    throw new BridgeConfigError(
      ENV.cloudToken,
      'Gravitee Cloud tokens are not supported by the bridge: set the endpoint and the Authorization header instead',
    );
  }

  // Endpoints: index 0, 1, ... while defined (Gravitee's getPropertyList); blank ones are skipped.
  const endpoints: URL[] = [];
  const flagEndpoints = values.endpoint as string[] | undefined;
  if (flagEndpoints && flagEndpoints.length > 0) {
    for (const raw of flagEndpoints) endpoints.push(parseEndpoint(raw, '--endpoint'));
  } else {
    for (let n = 0; has(env, ENV.endpoint(n)); n++) {
      const raw = lookup(env, ENV.endpoint(n))!;
      if (raw.trim() === '') continue;
      endpoints.push(parseEndpoint(raw, ENV.endpoint(n)));
    }
    if (endpoints.length === 0) {
      throw new BridgeConfigError(
        ENV.endpoint(0),
        'missing: set the APIM management API URL ending in /integration-controller (or --endpoint)',
      );
    }
  }

  const headers: Record<string, string> = {};
  const flagHeaders = values.header as string[] | undefined;
  if (flagHeaders && flagHeaders.length > 0) {
    for (const raw of flagHeaders) {
      const [name, value] = parseHeaderFlag(raw);
      if (!HEADER_NAME.test(name)) throw new BridgeConfigError('--header', 'invalid header name');
      headers[name] = value;
    }
  } else {
    for (let n = 0; has(env, ENV.headerName(n)); n++) {
      const name = lookup(env, ENV.headerName(n))!.trim();
      const value = lookup(env, ENV.headerValue(n));
      if (!HEADER_NAME.test(name)) {
        throw new BridgeConfigError(ENV.headerName(n), `invalid header name ${JSON.stringify(name)}`);
      }
      if (value === undefined || value.trim() === '') {
        throw new BridgeConfigError(ENV.headerValue(n), `missing: the value of header ${name}`);
      }
      headers[name] = value.trim();
    }
  }
  if (!Object.keys(headers).some((name) => name.toLowerCase() === 'authorization')) {
    throw new BridgeConfigError(
      flagHeaders?.length ? '--header' : ENV.headerName(0),
      'no Authorization header: APIM expects "Authorization: bearer <service account token>"',
    );
  }

  const providerType = lookup(env, ENV.providerType)?.trim();
  if (!providerType) throw new BridgeConfigError(ENV.providerType, `missing: set it to ${PROVIDER}`);
  if (providerType !== PROVIDER) {
    throw new BridgeConfigError(
      ENV.providerType,
      `the bridge serves ${PROVIDER} integrations only, received ${JSON.stringify(providerType)}`,
    );
  }
  const integrationId =
    (values['integration-id'] as string | undefined)?.trim() || lookup(env, ENV.integrationId)?.trim();
  if (!integrationId) {
    throw new BridgeConfigError(
      values['integration-id'] !== undefined ? '--integration-id' : ENV.integrationId,
      'missing: the integration id shown by APIM',
    );
  }

  const relayUrlRaw = (values['relay-url'] as string | undefined) ?? lookup(env, ENV.relayUrl);
  const relayUrlName = values['relay-url'] !== undefined ? '--relay-url' : ENV.relayUrl;
  if (!relayUrlRaw?.trim()) {
    throw new BridgeConfigError(relayUrlName, `missing: the deployed relay's RelayUrl output (wss://…)`);
  }
  const relayUrl = parseRelayUrl(relayUrlRaw, relayUrlName);
  const relayToken = ((values['relay-token'] as string | undefined) ?? lookup(env, ENV.relayToken))?.trim();
  if (!relayToken) {
    throw new BridgeConfigError(
      values['relay-token'] !== undefined ? '--relay-token' : ENV.relayToken,
      'missing: the relay token',
    );
  }

  const trustAll = parseBoolean(env, ENV.trustAll, false);
  const verifyHost = parseBoolean(env, ENV.verifyHost, true);
  let ca: string | undefined;
  const truststoreType = lookup(env, ENV.truststoreType)?.trim();
  if (truststoreType && truststoreType.toUpperCase() !== 'NONE') {
    if (truststoreType.toUpperCase() !== 'PEM') {
      throw new BridgeConfigError(
        ENV.truststoreType,
        `only PEM truststores are supported (received ${truststoreType}); convert it, or use NODE_EXTRA_CA_CERTS`,
      );
    }
    const content = lookup(env, ENV.truststoreContent);
    const path = lookup(env, ENV.truststorePath);
    if (content?.trim()) ca = content;
    else if (path?.trim()) {
      try {
        ca = readFileSync(path.trim(), 'utf8');
      } catch (error) {
        throw new BridgeConfigError(ENV.truststorePath, `cannot read ${path}: ${(error as Error).message}`);
      }
    } else {
      throw new BridgeConfigError(ENV.truststorePath, 'missing: a PEM truststore needs _path or _content');
    }
  }

  const ignored = Object.keys(env).filter((key) =>
    key.toLowerCase().startsWith(ENV.providerConfigPrefix.toLowerCase()),
  );

  return {
    endpoints,
    headers,
    integrationId,
    provider: PROVIDER,
    relayUrl,
    relayToken,
    tls: { trustAll, verifyHost, ...(ca ? { ca } : {}) },
    fragmentBytes: FRAGMENT_BYTES,
    maxMessageBytes: MAX_MESSAGE_BYTES,
    ignored,
  };
}

/** `<endpoint path>/exchange/controller` as a ws/wss URL (Gravitee's `WebSocketEndpoint.resolvePath`). */
export function controllerUrl(endpoint: URL, path: string): string {
  const scheme = endpoint.protocol === 'https:' || endpoint.protocol === 'wss:' ? 'wss:' : 'ws:';
  const base = endpoint.pathname.replace(/\/+$/, '');
  return `${scheme}//${endpoint.host}${base}${path}`;
}

/** An endpoint as it can be logged (no user info, no query). */
export function describeEndpoint(endpoint: URL): string {
  return `${endpoint.protocol}//${endpoint.host}${endpoint.pathname.replace(/\/+$/, '')}`;
}
