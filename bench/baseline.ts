/**
 * The conventional agent strategy, the benchmark's baseline: on every run it lists REST APIs and usage
 * plans with the SDK's default page (no `limit`, so API Gateway answers 25 per page), reads the stages
 * of every REST API, and re-exports every stage it federates (deployed, on a usage plan) — whether or
 * not it changed. One account-region after the other call by call (the account-regions concurrently,
 * as the agent does), with the SDK's standard retries (3 attempts) and no client-side rate limiter.
 * A call that still fails is logged and skipped, as a polling agent does; failures are counted.
 */
import {
  APIGatewayClient,
  GetExportCommand,
  GetRestApisCommand,
  GetStagesCommand,
  GetUsagePlansCommand,
  type RestApi,
  type UsagePlan,
} from '@aws-sdk/client-api-gateway';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';

export interface NaiveTarget {
  readonly region: string;
  readonly roleArn?: string;
}

export interface NaiveOptions {
  readonly endpoint: string;
  /** Region of the agent's own STS calls. */
  readonly region: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  readonly targets: readonly NaiveTarget[];
}

export interface NaiveResult {
  readonly durationMs: number;
  /** Operations that failed after the SDK's retries. */
  readonly failures: number;
  readonly exported: number;
  readonly federated: number;
}

/** One naive run over every target, account-regions concurrently. */
export async function runNaiveAgent(options: NaiveOptions): Promise<NaiveResult> {
  const t0 = performance.now();
  const sts = new STSClient({
    endpoint: options.endpoint,
    region: options.region,
    credentials: options.credentials,
  });
  const roleCredentials = new Map<string, Promise<NaiveOptions['credentials'] & { sessionToken: string }>>();
  const credentialsFor = (roleArn: string) => {
    let pending = roleCredentials.get(roleArn);
    if (!pending) {
      pending = sts
        .send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'naive-agent' }))
        .then(({ Credentials: c }) => ({
          accessKeyId: c!.AccessKeyId!,
          secretAccessKey: c!.SecretAccessKey!,
          sessionToken: c!.SessionToken!,
        }));
      roleCredentials.set(roleArn, pending);
    }
    return pending;
  };
  const results = await Promise.all(
    options.targets.map(async (target) => {
      const client = new APIGatewayClient({
        endpoint: options.endpoint,
        region: target.region,
        credentials: target.roleArn ? await credentialsFor(target.roleArn) : options.credentials,
        // SDK defaults: standard retry mode, 3 attempts.
      });
      return naiveAccountRegion(client);
    }),
  );
  return {
    durationMs: performance.now() - t0,
    failures: results.reduce((s, r) => s + r.failures, 0),
    exported: results.reduce((s, r) => s + r.exported, 0),
    federated: results.reduce((s, r) => s + r.federated, 0),
  };
}

async function naiveAccountRegion(
  client: APIGatewayClient,
): Promise<{ failures: number; exported: number; federated: number }> {
  let failures = 0;
  let exported = 0;
  let federated = 0;
  const attempt = async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch {
      failures++;
      return undefined;
    }
  };
  const apis: RestApi[] = [];
  let position: string | undefined;
  do {
    const page = await attempt(() => client.send(new GetRestApisCommand({ position })));
    if (!page) break;
    apis.push(...(page.items ?? []));
    position = page.position;
  } while (position);
  const plans: UsagePlan[] = [];
  position = undefined;
  do {
    const page = await attempt(() => client.send(new GetUsagePlansCommand({ position })));
    if (!page) break;
    plans.push(...(page.items ?? []));
    position = page.position;
  } while (position);
  const onPlan = new Set(plans.flatMap((p) => (p.apiStages ?? []).map((s) => `${s.apiId}/${s.stage}`)));
  for (const api of apis) {
    const stages = await attempt(() => client.send(new GetStagesCommand({ restApiId: api.id })));
    for (const stage of stages?.item ?? []) {
      if (!stage.deploymentId || !onPlan.has(`${api.id}/${stage.stageName}`)) continue;
      federated++;
      const doc = await attempt(() =>
        client.send(
          new GetExportCommand({
            restApiId: api.id,
            stageName: stage.stageName,
            exportType: 'oas30',
            accepts: 'application/json',
          }),
        ),
      );
      if (doc) exported++;
    }
  }
  return { failures, exported, federated };
}
