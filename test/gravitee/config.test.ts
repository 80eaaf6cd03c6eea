import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type BridgeConfig,
  BridgeConfigError,
  controllerUrl,
  ENV,
  loadBridgeConfig,
} from '../../gravitee/src/config.js';

/** The seed's docker-compose environment, with the relay's two variables instead of the AWS keys. */
const COMPOSE_ENV = {
  gravitee_integration_connector_ws_endpoints_0: 'https://apim.example.com/integration-controller',
  gravitee_integration_connector_ws_headers_0_name: 'Authorization',
  gravitee_integration_connector_ws_headers_0_value: 'bearer s3cr3t-token',
  gravitee_integration_providers_0_type: 'aws-api-gateway',
  gravitee_integration_providers_0_integrationId: 'integration-123',
  FED_RELAY_URL: 'wss://abc.execute-api.eu-west-1.amazonaws.com/live',
  FED_RELAY_TOKEN: 'relay-token-value',
};

function load(env: Record<string, string | undefined>, argv: string[] = []): BridgeConfig {
  const config = loadBridgeConfig(argv, env);
  if (config === 'help') throw new Error('help');
  return config;
}

function failure(env: Record<string, string | undefined>, argv: string[] = []): BridgeConfigError {
  try {
    loadBridgeConfig(argv, env);
  } catch (error) {
    if (error instanceof BridgeConfigError) return error;
    throw error;
  }
  throw new Error('expected a BridgeConfigError');
}

describe('bridge configuration', () => {
  it("reads Gravitee's agent variables from the seed's compose file and the relay's two", () => {
    const config = load(COMPOSE_ENV);
    expect(config.endpoints.map(String)).toEqual(['https://apim.example.com/integration-controller']);
    expect(config.headers).toEqual({ Authorization: 'bearer s3cr3t-token' });
    expect(config.integrationId).toBe('integration-123');
    expect(config.provider).toBe('aws-api-gateway');
    expect(config.relayUrl).toBe('wss://abc.execute-api.eu-west-1.amazonaws.com/live');
    expect(config.relayToken).toBe('relay-token-value');
    expect(config.tls).toEqual({ trustAll: false, verifyHost: true });
    expect(config.ignored).toEqual([]);
  });

  it('lists the AWS settings of Gravitee’s agent as ignored (names only)', () => {
    const config = load({
      ...COMPOSE_ENV,
      gravitee_integration_providers_0_configuration_accessKeyId: 'AKIA…',
      gravitee_integration_providers_0_configuration_region: 'eu-west-1',
    });
    expect(config.ignored).toEqual([
      'gravitee_integration_providers_0_configuration_accessKeyId',
      'gravitee_integration_providers_0_configuration_region',
    ]);
  });

  it('takes several endpoints and headers in index order', () => {
    const config = load({
      ...COMPOSE_ENV,
      gravitee_integration_connector_ws_endpoints_1: 'http://apim-2.internal:8072/integration-controller/',
      gravitee_integration_connector_ws_headers_1_name: 'X-Org',
      gravitee_integration_connector_ws_headers_1_value: 'DEFAULT',
    });
    expect(config.endpoints.map((u) => u.host)).toEqual(['apim.example.com', 'apim-2.internal:8072']);
    expect(Object.keys(config.headers)).toEqual(['Authorization', 'X-Org']);
  });

  it('lets flags override the environment', () => {
    const config = load(COMPOSE_ENV, [
      '--endpoint',
      'ws://127.0.0.1:9000/integration-controller',
      '--header',
      'Authorization: bearer other',
      '--integration-id',
      'int-flag',
      '--relay-url',
      'ws://127.0.0.1:8787/local',
      '--relay-token',
      'tok',
    ]);
    expect(config.endpoints.map(String)).toEqual(['ws://127.0.0.1:9000/integration-controller']);
    expect(config.headers).toEqual({ Authorization: 'bearer other' });
    expect(config.integrationId).toBe('int-flag');
    expect(config.relayUrl).toBe('ws://127.0.0.1:8787/local');
    expect(config.relayToken).toBe('tok');
  });

  it('accepts upper-case variable names', () => {
    const upper = Object.fromEntries(Object.entries(COMPOSE_ENV).map(([k, v]) => [k.toUpperCase(), v]));
    expect(load(upper).integrationId).toBe('integration-123');
  });

  it.each([
    [ENV.endpoint(0), { gravitee_integration_connector_ws_endpoints_0: undefined }],
    [ENV.endpoint(0), { gravitee_integration_connector_ws_endpoints_0: 'ftp://apim/integration-controller' }],
    [ENV.endpoint(0), { gravitee_integration_connector_ws_endpoints_0: 'not a url' }],
    [ENV.headerValue(0), { gravitee_integration_connector_ws_headers_0_value: '' }],
    [ENV.headerName(0), { gravitee_integration_connector_ws_headers_0_name: 'Bad Header' }],
    [ENV.headerName(0), { gravitee_integration_connector_ws_headers_0_name: 'X-Other' }],
    [ENV.providerType, { gravitee_integration_providers_0_type: undefined }],
    [ENV.providerType, { gravitee_integration_providers_0_type: 'azure-api-management' }],
    [ENV.integrationId, { gravitee_integration_providers_0_integrationId: ' ' }],
    [ENV.relayUrl, { FED_RELAY_URL: undefined }],
    [ENV.relayUrl, { FED_RELAY_URL: 'https://abc.execute-api.eu-west-1.amazonaws.com/live' }],
    [ENV.relayToken, { FED_RELAY_TOKEN: undefined }],
    [ENV.trustAll, { gravitee_integration_connector_ws_ssl_trustAll: 'yes' }],
    [ENV.truststoreType, { gravitee_integration_connector_ws_ssl_truststore_type: 'PKCS12' }],
    [ENV.truststorePath, { gravitee_integration_connector_ws_ssl_truststore_type: 'PEM' }],
    [ENV.cloudToken, { gravitee_cloud_token: 'cloud' }],
  ])('fails naming %s when it is missing or bad', (variable, change) => {
    const error = failure({ ...COMPOSE_ENV, ...change });
    expect(error.variable).toBe(variable);
    expect(error.message.startsWith(`${variable}: `)).toBe(true);
  });

  it('never repeats a secret in its messages', () => {
    const error = failure({
      ...COMPOSE_ENV,
      FED_RELAY_URL: 'https://relay.example/?token=relay-token-value',
    });
    expect(error.message).not.toContain('relay-token-value');
    expect(error.message).not.toContain('s3cr3t-token');
  });

  it('reads a PEM truststore from its path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bridge-ca-'));
    const path = join(dir, 'ca.pem');
    writeFileSync(path, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const config = load({
      ...COMPOSE_ENV,
      gravitee_integration_connector_ws_ssl_truststore_type: 'PEM',
      gravitee_integration_connector_ws_ssl_truststore_path: path,
    });
    expect(config.tls.ca).toContain('BEGIN CERTIFICATE');
  });

  it('returns help for --help and fails naming the flag for an unknown one', () => {
    expect(loadBridgeConfig(['--help'], {})).toBe('help');
    expect(failure(COMPOSE_ENV, ['--nope']).variable).toBe('flags');
  });
});

describe('controller URL', () => {
  it('appends /exchange/controller to the endpoint path and maps http(s) to ws(s)', () => {
    expect(
      controllerUrl(new URL('https://apim.example.com/integration-controller'), '/exchange/controller'),
    ).toBe('wss://apim.example.com/integration-controller/exchange/controller');
    expect(
      controllerUrl(new URL('http://127.0.0.1:8072/integration-controller/'), '/exchange/controller'),
    ).toBe('ws://127.0.0.1:8072/integration-controller/exchange/controller');
    expect(controllerUrl(new URL('wss://apim.example.com'), '/exchange/controller')).toBe(
      'wss://apim.example.com/exchange/controller',
    );
  });
});
