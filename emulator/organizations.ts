/**
 * AWS Organizations in moto, for tests and the benchmark: an organisation (the default account as its
 * management account), OUs, member accounts, and the member role in each (moto's IAM through its query
 * API and `x-moto-account-id`), so `sts:AssumeRole` reaches them and the proxy's `requireRoles` can
 * refuse the accounts without it.
 */
import {
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';

function direct(motoEndpoint: string) {
  return {
    endpoint: motoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 3,
  };
}

/** Temporary credentials of an account (moto lets any role be assumed; straight to moto). */
export async function memberCredentials(motoEndpoint: string, accountId: string) {
  const sts = new STSClient(direct(motoEndpoint));
  const out = await sts.send(
    new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${accountId}:role/seeder`, RoleSessionName: 'seeder' }),
  );
  sts.destroy();
  const c = out.Credentials!;
  return { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
}

/**
 * An organisation in moto: the default account as management account, an OU `workloads` with a nested
 * OU `team`, `accounts` member accounts spread over both, the role `roleName` in all but `withoutRole` of them.
 */
export async function seedOrganization(
  motoEndpoint: string,
  options: { accounts: number; withoutRole: number; roleName: string },
): Promise<{ ouId: string; accountIds: string[]; withRole: string[]; withoutRole: string[] }> {
  const org = new OrganizationsClient(direct(motoEndpoint));
  await org.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }));
  const rootId = (await org.send(new ListRootsCommand({}))).Roots![0]!.Id!;
  const ouId = (await org.send(new CreateOrganizationalUnitCommand({ ParentId: rootId, Name: 'workloads' })))
    .OrganizationalUnit!.Id!;
  const nestedId = (await org.send(new CreateOrganizationalUnitCommand({ ParentId: ouId, Name: 'team' })))
    .OrganizationalUnit!.Id!;
  const accountIds: string[] = [];
  for (let i = 0; i < options.accounts; i++) {
    const status = await org.send(
      new CreateAccountCommand({ AccountName: `member-${i}`, Email: `member-${i}@example.com` }),
    );
    const accountId = status.CreateAccountStatus!.AccountId!;
    await org.send(
      new MoveAccountCommand({
        AccountId: accountId,
        SourceParentId: rootId,
        DestinationParentId: i % 2 === 0 ? ouId : nestedId,
      }),
    );
    accountIds.push(accountId);
  }
  org.destroy();
  const withRole = accountIds.slice(0, accountIds.length - options.withoutRole);
  for (const accountId of withRole) await createRole(motoEndpoint, accountId, options.roleName);
  return { ouId, accountIds, withRole, withoutRole: accountIds.slice(withRole.length) };
}

/** Creates a role in an account of moto's IAM (the query API, moto's `x-moto-account-id`; no IAM client needed). */
export async function createRole(motoEndpoint: string, accountId: string, roleName: string): Promise<void> {
  const body = new URLSearchParams({
    Action: 'CreateRole',
    Version: '2010-05-08',
    RoleName: roleName,
    AssumeRolePolicyDocument: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: '*' }, Action: 'sts:AssumeRole' }],
    }),
  });
  const response = await fetch(`${motoEndpoint}/`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-moto-account-id': accountId,
      authorization:
        'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0',
    },
    body,
  });
  if (response.status !== 200) throw new Error(`CreateRole ${roleName} in ${accountId}: ${response.status}`);
}
