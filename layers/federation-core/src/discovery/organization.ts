/**
 * Organisation sources (opt-in): the accounts of an AWS Organizations scope, listed at the start of a
 * run from the management or a delegated administrator account (`ListAccountsForParent` and
 * `ListChildren` of each OU, nested OUs included, every page), and a run's account-regions (units).
 */
import {
  ListAccountsForParentCommand,
  type ListAccountsForParentCommandOutput,
  ListChildrenCommand,
  type ListChildrenCommandOutput,
  type OrganizationsClient,
} from '@aws-sdk/client-organizations';
import { roleArnOf } from '../config/load.js';
import type { OrganizationScope, Source } from '../config/schema.js';

export interface OrganizationAccount {
  readonly accountId: string;
  readonly name?: string;
}

/** Active accounts under the scope's OUs (nested OUs included), without the excluded ones, sorted. */
export async function listOrganizationAccounts(
  client: OrganizationsClient,
  scope: Pick<OrganizationScope, 'ouIds' | 'excludeAccountIds'>,
): Promise<OrganizationAccount[]> {
  const accounts = new Map<string, OrganizationAccount>();
  const excluded = new Set(scope.excludeAccountIds);
  const seen = new Set<string>();
  const parents = [...scope.ouIds];
  while (parents.length > 0) {
    const parentId = parents.shift() as string;
    if (seen.has(parentId)) continue;
    seen.add(parentId);
    let token: string | undefined;
    do {
      const page: ListAccountsForParentCommandOutput = await client.send(
        new ListAccountsForParentCommand({ ParentId: parentId, NextToken: token }),
      );
      for (const account of page.Accounts ?? []) {
        if (!account.Id || excluded.has(account.Id)) continue;
        const status = account.State ?? account.Status;
        if (status && status !== 'ACTIVE') continue;
        accounts.set(account.Id, { accountId: account.Id, ...(account.Name ? { name: account.Name } : {}) });
      }
      token = page.NextToken;
    } while (token);
    token = undefined;
    do {
      const page: ListChildrenCommandOutput = await client.send(
        new ListChildrenCommand({ ParentId: parentId, ChildType: 'ORGANIZATIONAL_UNIT', NextToken: token }),
      );
      for (const child of page.Children ?? []) if (child.Id) parents.push(child.Id);
      token = page.NextToken;
    } while (token);
  }
  return [...accounts.values()].sort((a, b) => a.accountId.localeCompare(b.accountId));
}

/** One account-region of a run: what a fan-out message names and a unit record is keyed by. */
export interface UnitSpec {
  /** `<source>#<accountId>#<region>`. */
  readonly key: string;
  readonly source: string;
  readonly accountId: string;
  readonly region: string;
  readonly roleArn?: string;
  /** The unit's account came from an organisation scope (a missing role is reported, not retried). */
  readonly organization?: true;
}

export function unitKey(source: string, accountId: string, region: string): string {
  return `${source}#${accountId}#${region}`;
}

/** The account of a role ARN (`arn:aws:iam::<account>:role/...`). */
export function accountOfRoleArn(roleArn: string | undefined): string | undefined {
  return roleArn ? /^arn:[^:]+:iam::(\d{12}):/.exec(roleArn)?.[1] : undefined;
}

export interface UnitExpansionDeps {
  /** Account of the function's own credentials, for sources with neither `accountId` nor `roleArn`. */
  readonly callerAccountId: () => Promise<string>;
  /** The Organizations client of a scope (its `listingRoleArn`, or the function's own credentials). */
  readonly organizations: (listingRoleArn?: string) => OrganizationsClient;
}

/**
 * The run's account-regions: each region of each source, each account of an organisation scope. A
 * scope that cannot be listed throws (the run has no answer without its accounts).
 */
export async function expandUnits(
  sources: readonly Source[],
  deps: UnitExpansionDeps,
): Promise<{ units: UnitSpec[]; organizationAccounts: number }> {
  const units: UnitSpec[] = [];
  const keys = new Set<string>();
  let organizationAccounts = 0;
  const add = (unit: UnitSpec) => {
    if (keys.has(unit.key)) return;
    keys.add(unit.key);
    units.push(unit);
  };
  for (const source of sources) {
    if (source.organization) {
      const accounts = await listOrganizationAccounts(
        deps.organizations(source.organization.listingRoleArn),
        source.organization,
      );
      organizationAccounts += accounts.length;
      for (const { accountId } of accounts) {
        for (const region of source.regions) {
          add({
            key: unitKey(source.name, accountId, region),
            source: source.name,
            accountId,
            region,
            roleArn: roleArnOf(source, accountId, region),
            organization: true,
          });
        }
      }
      continue;
    }
    const accountId = source.accountId ?? accountOfRoleArn(source.roleArn) ?? (await deps.callerAccountId());
    for (const region of source.regions) {
      add({
        key: unitKey(source.name, accountId, region),
        source: source.name,
        accountId,
        region,
        ...(source.roleArn ? { roleArn: source.roleArn } : {}),
      });
    }
  }
  return { units, organizationAccounts };
}
