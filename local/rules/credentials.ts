import { LOCAL_SESSION_PREFIX } from '#shared/aws/clients.ts';
import type { Principal } from './authorizer.ts';

/**
 * The credentials of a local role session. In Lambda a function's environment holds its role's
 * temporary credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); locally the key
 * pair is the emulators' and the session token names the role, so the rules proxy knows who calls.
 */
export function roleSessionEnvironment(roleArn: string, session: string): Record<string, string> {
  const token = `${LOCAL_SESSION_PREFIX}${Buffer.from(JSON.stringify({ roleArn, session })).toString('base64url')}`;
  return { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_SESSION_TOKEN: token };
}

/** The role session a request's `X-Amz-Security-Token` names; undefined for the operator's requests. */
export function principalFromSessionToken(token: string | undefined): Principal | undefined {
  if (!token?.startsWith(LOCAL_SESSION_PREFIX)) return undefined;
  const { roleArn, session } = JSON.parse(
    Buffer.from(token.slice(LOCAL_SESSION_PREFIX.length), 'base64url').toString('utf8'),
  ) as { roleArn: string; session: string };
  return { kind: 'role', roleArn, session };
}
