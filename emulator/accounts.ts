/**
 * Account attribution: which AWS account a request's access key belongs to, so calls can be counted and
 * throttled per account-region as AWS does. moto puts every unknown key in 123456789012; keys returned by
 * STS `AssumeRole` belong to the role's account (learned from the response); others can be registered.
 */

/** moto's default account: every access key it does not know belongs to it. */
export const DEFAULT_ACCOUNT_ID = '123456789012';

export interface AccountDirectory {
  accountOf(accessKeyId: string): string;
  register(accessKeyId: string, accountId: string): void;
  /** Learns the account of the temporary key in an STS `AssumeRole*` response body. */
  learnFromAssumeRole(body: Buffer): void;
}

export function createAccountDirectory(defaultAccountId = DEFAULT_ACCOUNT_ID): AccountDirectory {
  const accounts = new Map<string, string>();
  return {
    accountOf: (accessKeyId) => accounts.get(accessKeyId) ?? defaultAccountId,
    register: (accessKeyId, accountId) => {
      accounts.set(accessKeyId, accountId);
    },
    learnFromAssumeRole: (body) => {
      const text = body.toString('utf8');
      const key = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(text)?.[1];
      const account = /<Arn>arn:[^:]+:sts::(\d{12}):assumed-role\//.exec(text)?.[1];
      if (key && account) accounts.set(key, account);
    },
  };
}
