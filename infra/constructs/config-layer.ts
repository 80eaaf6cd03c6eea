import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AssetHashType } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { AgentConfig } from '../../layers/federation-core/src/config/schema.js';

/** Where the functions find the agent settings: the layer's `federation/config.json` under `/opt`. */
export const CONFIG_FILE_PATH = '/opt/federation/config.json';

export interface ConfigLayerProps {
  /** The validated agent settings. */
  readonly config: AgentConfig;
}

/**
 * The agent settings as a file in a small Lambda layer (`/opt/federation/config.json`, found through
 * `FED_CONFIG_FILE`), not in an environment variable: Lambda limits a function's environment to 4 KB,
 * which a few dozen sources exceed. A code asset, so a config change is a new layer version, deployed
 * like new code; the template carries no settings.
 */
export class ConfigLayer extends Construct {
  readonly layer: lambda.LayerVersion;
  /** The folder the layer is made of (holds `federation/config.json`). */
  readonly directory: string;

  constructor(scope: Construct, id: string, props: ConfigLayerProps) {
    super(scope, id);
    const content = `${JSON.stringify(props.config)}\n`;
    // One folder per content: a synth of the same settings reuses it.
    const hash = createHash('sha256').update(content).digest('hex').slice(0, 16);
    this.directory = join(tmpdir(), 'apigw-federation-config', hash);
    mkdirSync(join(this.directory, 'federation'), { recursive: true });
    writeFileSync(join(this.directory, 'federation', 'config.json'), content);
    this.layer = new lambda.LayerVersion(this, 'Layer', {
      code: lambda.Code.fromAsset(this.directory, { assetHashType: AssetHashType.SOURCE }),
      description: 'apigw-federation agent settings (federation/config.json)',
      compatibleRuntimes: [lambda.Runtime.NODEJS_22_X],
      compatibleArchitectures: [lambda.Architecture.ARM_64, lambda.Architecture.X86_64],
    });
  }
}
