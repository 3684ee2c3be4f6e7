import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';

const LOCAL_ACCOUNT = LOCAL_ENVIRONMENT.account;
const LOCAL_REGION = LOCAL_ENVIRONMENT.region;

/**
 * For tests that read one stack's template on its own: resolves the intrinsic functions CDK writes into
 * a DefinitionString to stand-ins of the same shape (a function's ARN becomes
 * `arn:aws:lambda:…:function:<logical id>`, a Ref the logical id, an import its export name). The local
 * platform itself resolves a whole stage with local/deployment/intrinsics.ts.
 */
export function resolveIntrinsics(value: unknown): string {
  if (typeof value === 'string') return value;
  const node = value as Record<string, unknown>;
  if ('Fn::Join' in node) {
    const [separator, parts] = node['Fn::Join'] as [string, unknown[]];
    return parts.map(resolveIntrinsics).join(separator);
  }
  if ('Fn::GetAtt' in node) {
    const [logicalId] = node['Fn::GetAtt'] as [string, string];
    return `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${logicalId}`;
  }
  // A value another stack exports (the data stack's table names): its export name stands in, as the
  // local runner binds each task to the local resources itself.
  if ('Fn::ImportValue' in node) return `import:${resolveIntrinsics(node['Fn::ImportValue'])}`;
  if ('Ref' in node) {
    const ref = node.Ref as string;
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': LOCAL_REGION,
      'AWS::AccountId': LOCAL_ACCOUNT,
      'AWS::URLSuffix': 'amazonaws.com',
    };
    return pseudo[ref] ?? `arn:aws:sns:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${ref}`;
  }
  throw new Error(`cannot resolve ${JSON.stringify(value).slice(0, 200)} in a state machine definition`);
}
