/**
 * `apigw-fed gravitee` (and the container image's entry): reads the configuration (Gravitee's agent
 * variables plus FED_RELAY_URL / FED_RELAY_TOKEN), runs the bridge until SIGINT/SIGTERM.
 *
 * Exit codes: 0 stopped by a signal (or `--help`), 1 Gravitee refused the integration (HELLO ERROR),
 * 2 a missing or bad setting (the message names the variable).
 */
import { type Bridge, type BridgeOptions, startBridge } from './bridge.js';
import { BridgeConfigError, describeEndpoint, loadBridgeConfig, USAGE } from './config.js';
import { type Log, lineLog } from './log.js';

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_CONFIG = 2;

export interface GraviteeIo {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  readonly env: Record<string, string | undefined>;
  /** Resolves when the bridge should stop (default: SIGINT or SIGTERM). */
  readonly untilStopped?: () => Promise<unknown>;
  /** Test seams: tuning the bridge takes (backoff, batch sizes), and a log instead of stderr lines. */
  readonly tuning?: Omit<BridgeOptions, 'config' | 'log'>;
  readonly log?: Log;
  readonly onStarted?: (bridge: Bridge) => void;
}

function defaultIo(): GraviteeIo {
  return {
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
  };
}

function signals(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/** Runs the bridge; resolves with the exit code. */
export async function main(argv: readonly string[], io: GraviteeIo = defaultIo()): Promise<number> {
  let config: ReturnType<typeof loadBridgeConfig>;
  try {
    config = loadBridgeConfig(argv, io.env);
  } catch (error) {
    if (error instanceof BridgeConfigError) {
      io.stderr(`apigw-fed gravitee: ${error.message}\n\n${USAGE}`);
      return EXIT_CONFIG;
    }
    throw error;
  }
  if (config === 'help') {
    io.stdout(USAGE);
    return EXIT_OK;
  }
  const log = io.log ?? lineLog(io.stderr);
  if (config.ignored.length > 0) {
    log.warn(
      `ignoring ${config.ignored.join(', ')}: the bridge holds no AWS credentials and runs no discovery (AWS access and discovery settings belong to the deployed agent)`,
    );
  }
  log.info(
    `apigw-federation Gravitee bridge: integration ${config.integrationId}, Gravitee ${config.endpoints.map(describeEndpoint).join(', ')}, relay ${config.relayUrl}`,
  );
  const stopped = (io.untilStopped ?? signals)();
  const bridge = startBridge({ config, log, ...io.tuning });
  io.onStarted?.(bridge);
  const outcome = await Promise.race([
    bridge.fatal.then((reason) => ({ fatal: reason })),
    stopped.then((signal) => ({ signal })),
  ]);
  if ('signal' in outcome)
    log.info(`${typeof outcome.signal === 'string' ? outcome.signal : 'stop'} received: closing both links`);
  await bridge.stop();
  if ('fatal' in outcome) {
    io.stderr(`apigw-fed gravitee: ${outcome.fatal}`);
    return EXIT_REFUSED;
  }
  log.info('stopped');
  return EXIT_OK;
}
