import { SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { signedPost } from '#cli/signed-fetch.ts';
import type { ApprovalOutput } from '#shared/pipelines/approvals.ts';
import { StageError } from './stage-info.ts';

/**
 * The AWS side of answering an approval request of a deployed stage: who answers (their IAM identity)
 * and the SendTaskSuccess that resumes the waiting retrain. Both use the SDK's default credential
 * chain; AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL_SFN point them at an emulator.
 */

/** The caller's ARN (STS GetCallerIdentity, which needs no permission), recorded as who answered. */
export async function callerIdentityArn(region: string): Promise<string> {
  // One signed Query API call: the project has no STS client, and this is all it would be used for.
  const url = new URL(process.env.AWS_ENDPOINT_URL_STS ?? `https://sts.${region}.amazonaws.com/`);
  const response = await signedPost(url, {
    service: 'sts',
    region,
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body: 'Action=GetCallerIdentity&Version=2011-06-15',
  });
  const text = await response.text();
  const arn = /<Arn>([^<]+)<\/Arn>/.exec(text)?.[1];
  if (!response.ok || !arn) {
    const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? text.slice(0, 200);
    throw new StageError(`STS GetCallerIdentity failed (HTTP ${response.status}): ${message}`);
  }
  return arn;
}

/** Resumes the execution waiting on `taskToken` with the decision (its SDK errors propagate by name). */
export async function sendTaskSuccess(
  region: string,
  taskToken: string,
  output: ApprovalOutput,
): Promise<void> {
  const sfn = new SFNClient({ region });
  try {
    await sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) }));
  } finally {
    sfn.destroy();
  }
}
