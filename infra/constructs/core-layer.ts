import { join } from 'node:path';
import { AssetHashType, DockerImage, RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { buildCoreLayer } from '../../layers/federation-core/build.js';
import { REPO_ROOT } from './federation-function.js';

export interface CoreLayerProps {
  /** @default - 'apigw-federation core: discovery, subscriptions, ledger, relay protocol' */
  readonly description?: string;
}

/**
 * The federation core (`@apigw-federation/core`) as a Lambda layer. The asset is built by esbuild in a
 * local bundling hook (`layers/federation-core/build.ts`), so `cdk synth` builds it and Docker is never
 * needed; its hash is the hash of the built bytes.
 */
export class CoreLayer extends Construct {
  readonly layer: lambda.LayerVersion;

  constructor(scope: Construct, id: string, props: CoreLayerProps = {}) {
    super(scope, id);
    const code = lambda.Code.fromAsset(join(REPO_ROOT, 'layers', 'federation-core'), {
      assetHashType: AssetHashType.OUTPUT,
      exclude: ['dist', 'node_modules'],
      bundling: {
        // Required by the API, never pulled: the local hook always bundles (or throws).
        image: DockerImage.fromRegistry('public.ecr.aws/sam/build-nodejs22.x'),
        local: {
          tryBundle(outputDir: string): boolean {
            buildCoreLayer(outputDir);
            return true;
          },
        },
      },
    });
    this.layer = new lambda.LayerVersion(this, 'Layer', {
      code,
      description:
        props.description ?? 'apigw-federation core: discovery, subscriptions, ledger, relay protocol',
      compatibleRuntimes: [lambda.Runtime.NODEJS_22_X],
      compatibleArchitectures: [lambda.Architecture.ARM_64, lambda.Architecture.X86_64],
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
