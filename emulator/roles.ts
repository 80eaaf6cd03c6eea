/**
 * Whether the role an `sts:AssumeRole` names exists in its account: AWS refuses to assume a role that does
 * not exist, moto assumes any ARN. Asked of moto's IAM in the role's account (moto's `x-moto-account-id`).
 */
import { request } from 'node:http';

/** The `RoleArn` of an AssumeRole request body (query protocol form, or JSON). */
export function roleArnOfRequest(body: Buffer): string | undefined {
  const text = body.toString('utf8');
  if (text.trimStart().startsWith('{')) {
    try {
      const arn = (JSON.parse(text) as { RoleArn?: unknown }).RoleArn;
      return typeof arn === 'string' ? arn : undefined;
    } catch {
      return undefined;
    }
  }
  return new URLSearchParams(text).get('RoleArn') ?? undefined;
}

/** True when moto's IAM of the role's account has the role (`GetRole`). */
export async function roleExists(target: URL, body: Buffer): Promise<boolean> {
  const arn = roleArnOfRequest(body);
  const match = arn ? /^arn:[^:]+:iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(arn) : null;
  if (!match) return false;
  const [, accountId, roleName] = match as unknown as [string, string, string];
  const form = new URLSearchParams({
    Action: 'GetRole',
    Version: '2010-05-08',
    RoleName: roleName,
  }).toString();
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        method: 'POST',
        path: '/',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(form),
          'x-moto-account-id': accountId,
          authorization:
            'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0',
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 500));
      },
    );
    req.on('error', reject);
    req.end(form);
  });
  return status === 200;
}
