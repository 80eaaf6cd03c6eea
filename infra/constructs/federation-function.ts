import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { SHARED_PACKAGES } from '../../layers/federation-core/build.js';
import { METRICS_NAMESPACE } from '../../layers/federation-core/src/metrics.js';

/** Root of the repository (holds `functions/`, `package-lock.json`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The functions the app bundles: `functions/<name>/handler.ts`, each exporting `handler`. */
export const FUNCTION_NAMES = [
  'discovery',
  'subscriptions',
  'relay-authorizer',
  'relay-connection',
  'relay-command',
] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

/** Handler entry file of a function. */
export function handlerEntry(name: FunctionName): string {
  return join(REPO_ROOT, 'functions', name, 'handler.ts');
}

/** CloudWatch namespace of the functions' EMF metrics (set as `POWERTOOLS_METRICS_NAMESPACE`). */
export { METRICS_NAMESPACE };

/**
 * `POWERTOOLS_SERVICE_NAME` of a function: its name, the `service` dimension of its EMF metrics (the
 * handlers also pass it to Powertools explicitly).
 */
export function serviceName(name: FunctionName): string {
  return name;
}

/**
 * Modules the functions never bundle: the core (with the AWS SDK clients it bundles) and the shared
 * packages (zod) come with the layer. The runtime's own SDK is never used.
 */
export const EXTERNAL_MODULES = ['@apigw-federation/core', ...SHARED_PACKAGES];

/** Lambda's limit on the environment of a function: every name and value, 4 KB in all. */
export const LAMBDA_ENVIRONMENT_MAX_BYTES = 4096;
/** What a value unknown at synth (a `Ref`, `Fn::GetAtt`, `Fn::ImportValue`) is counted as: a long ARN. */
export const TOKEN_ESTIMATE_BYTES = 160;

function valueBytes(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  const join = (value as { 'Fn::Join'?: [string, unknown[]] } | null)?.['Fn::Join'];
  if (join) {
    const [separator, parts] = join;
    return (
      parts.reduce<number>((sum, part) => sum + valueBytes(part), 0) + separator.length * (parts.length - 1)
    );
  }
  return TOKEN_ESTIMATE_BYTES;
}

/**
 * Size of a synthesized (resolved) Lambda environment as Lambda counts it, names and values, each value
 * unknown at synth counted as {@link TOKEN_ESTIMATE_BYTES}.
 */
export function environmentBytes(variables: Record<string, unknown>): number {
  return Object.entries(variables).reduce(
    (sum, [name, value]) => sum + Buffer.byteLength(name, 'utf8') + valueBytes(value),
    0,
  );
}

export interface FederationFunctionProps {
  /** Which handler (`functions/<name>/handler.ts`). */
  readonly name: FunctionName;
  /** The core layer (`@apigw-federation/core` under `nodejs/node_modules`). */
  readonly coreLayer: lambda.ILayerVersion;
  /** Environment variables on top of the house ones (`POWERTOOLS_*`, `NODE_OPTIONS`). */
  readonly environment?: Record<string, string>;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default Duration.seconds(30) */
  readonly timeout?: Duration;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** Async invocation settings (retries, failure destination). @default - Lambda defaults */
  readonly onFailure?: lambda.IDestination;
  /** @default - Lambda default (2) */
  readonly retryAttempts?: number;
  /** Oldest asynchronous event Lambda still runs. @default - Lambda default (6 hours) */
  readonly maxEventAge?: Duration;
  readonly description?: string;
}

/**
 * A federation Lambda function with the house defaults: `NodejsFunction` bundled by local esbuild
 * (never Docker) as minified CommonJS with source maps for Node.js 22 on ARM64, the core (with the SDK)
 * kept external (the core comes from the layer, found through `NODE_PATH`), active tracing, its own
 * log group with a retention, and its own role that can write only to that log group.
 */
export class FederationFunction extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly name: FunctionName;

  constructor(scope: Construct, id: string, props: FederationFunctionProps) {
    super(scope, id);
    this.name = props.name;
    const entry = handlerEntry(props.name);
    if (!existsSync(entry)) {
      throw new Error(`Handler of function '${props.name}' not found: expected ${entry}`);
    }

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // An own role instead of the default one: no AWS managed policy, logs only to this log group.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of the apigw-federation ${props.name} function`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry,
      handler: 'handler',
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(30),
      role: this.role,
      logGroup: this.logGroup,
      tracing: lambda.Tracing.ACTIVE,
      layers: [props.coreLayer],
      onFailure: props.onFailure,
      retryAttempts: props.retryAttempts,
      maxEventAge: props.maxEventAge,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      projectRoot: REPO_ROOT,
      environment: {
        POWERTOOLS_SERVICE_NAME: serviceName(props.name),
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      bundling: {
        format: nodejs.OutputFormat.CJS,
        target: 'node22',
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        externalModules: EXTERNAL_MODULES,
        forceDockerBundling: false,
        logLevel: nodejs.LogLevel.WARNING,
      },
    });

    // Lambda refuses a function whose environment (names and values) exceeds 4 KB.
    this.node.addValidation({
      validate: () => {
        const vars = Stack.of(this).resolve(
          (this.function.node.defaultChild as lambda.CfnFunction).environment,
        ) as { variables?: Record<string, unknown> } | undefined;
        const bytes = environmentBytes(vars?.variables ?? {});
        return bytes > LAMBDA_ENVIRONMENT_MAX_BYTES
          ? [
              `The environment of function '${props.name}' is about ${bytes} bytes: Lambda allows ${LAMBDA_ENVIRONMENT_MAX_BYTES}`,
            ]
          : [];
      },
    });

    // X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions.
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support only Resource "*".',
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Node.js 22 is the runtime the core layer and bundles target (the house runtime).',
    });
  }

  /** Adds an environment variable to the function. */
  addEnvironment(key: string, value: string): void {
    this.function.addEnvironment(key, value);
  }
}
