import { S3Client } from '@aws-sdk/client-s3';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

/**
 * HTTP requests signed with SigV4, with the credentials of the SDK's default chain (AWS_PROFILE,
 * environment, SSO…): to a deployed inference API (IAM authorization).
 */

/** The SDK's own SHA-256 for Node (HMAC when given a key). */
class Sha256 extends Hash {
  constructor(secret?: ConstructorParameters<typeof Hash>[1]) {
    super('sha256', secret);
  }
}

/** A POST signed with SigV4 for `service` in `region`. */
export async function signedPost(
  url: URL,
  request: { service: string; region: string; headers: Record<string, string>; body: string },
): Promise<Response> {
  // Any SDK client resolves the default credential chain; its config exposes the provider.
  const client = new S3Client({ region: request.region });
  try {
    const signer = new SignatureV4({
      service: request.service,
      region: request.region,
      credentials: client.config.credentials,
      sha256: Sha256,
    });
    const signed = await signer.sign({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: { ...request.headers, host: url.host },
      body: request.body,
    });
    // fetch sets Host itself, from the same URL that was signed.
    const { host: _host, ...headers } = signed.headers;
    return await fetch(url, { method: 'POST', headers, body: request.body });
  } finally {
    client.destroy();
  }
}

/** POSTs JSON to `url`, signed for API Gateway (`execute-api`) in `region`. */
export const signedJsonPost = (url: URL, body: string, region: string) =>
  signedPost(url, { service: 'execute-api', region, headers: { 'content-type': 'application/json' }, body });
