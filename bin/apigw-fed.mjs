#!/usr/bin/env node
// Entry point of the `apigw-fed` command: runs the TypeScript sources through tsx, so a clone needs
// no build step. Each subcommand lives in its own module with a `main(argv)` export.
import { tsImport } from 'tsx/esm/api';

const COMMANDS = {
  start: '../local/start.ts',
  discover: '../cli/discover.ts',
  'rotate-api-key-secret': '../cli/rotate-api-key-secret.ts',
  connect: '../client/cli.ts',
  apis: '../client/cli.ts',
  subscribe: '../client/cli.ts',
  unsubscribe: '../client/cli.ts',
  ping: '../client/cli.ts',
  gravitee: '../gravitee/src/main.ts',
};

const [command, ...rest] = process.argv.slice(2);
if (!command || !(command in COMMANDS) || command === '--help') {
  process.stdout.write(
    `usage: apigw-fed <command> [options]\n\n` +
      `  start         run the agent locally against an emulated AWS (same as npm start)\n` +
      `  discover      run one discovery and print the summary and the catalog as JSON\n` +
      `  rotate-api-key-secret  rotate the API-key HMAC secret, keeping the versions in use\n` +
      `  connect       connect to a relay as a control plane and stream events\n` +
      `  apis          list the federated APIs and plans\n` +
      `  subscribe     subscribe an application to a plan\n` +
      `  unsubscribe   revoke a subscription\n` +
      `  ping          ask the agent for its status\n` +
      `  gravitee      bridge Gravitee APIM's integration controller to the relay\n\n` +
      `Run 'apigw-fed <command> --help' for the options of a command.\n`,
  );
  process.exit(command && command !== '--help' ? 2 : 0);
}

const module = await tsImport(COMMANDS[command], import.meta.url);
// Client subcommands take the subcommand name as their first argument.
const argv = COMMANDS[command] === '../client/cli.ts' ? [command, ...rest] : rest;
const code = await module.main(argv);
if (typeof code === 'number') process.exitCode = code;
