/** The CLI's one-line run summary: the bounded lists of a run summary are read by their counts. */
import { describe, expect, it } from 'vitest';
import { summary } from '../../client/cli.js';

describe('apigw-fed run summary line', () => {
  it('counts the accounts without the role (withoutRoleCount), not the 1,000 listed', () => {
    const withoutRole = Array.from({ length: 1_000 }, (_, i) => String(200_000_000_000 + i));
    expect(
      summary({
        counts: { discovered: 0, upserted: 0, removed: 0, unchanged: 0 },
        accountRegionCount: 12_000,
        accountRegionsByStatus: { failed: 12_000 },
        organization: { accounts: 12_000, withoutRole, withoutRoleCount: 12_000 },
        durationMs: 5,
        partial: true,
      }),
    ).toBe(
      'discovered 0, upserted 0, removed 0, unchanged 0, 12000 account-regions (12000 failed), 12000 accounts without the role, 5 ms, PARTIAL',
    );
  });

  it('reads the list of agents before the bound, and says nothing when every account has the role', () => {
    expect(summary({ organization: { accounts: 3, withoutRole: ['111122223333'] } })).toBe(
      '1 account without the role',
    );
    expect(summary({ counts: { discovered: 1 }, organization: { accounts: 3, withoutRole: [] } })).toBe(
      'discovered 1',
    );
  });
});
