#!/usr/bin/env node
// Entry for `npx keel` and `npm start`: runs the TypeScript CLI through tsx, no build step.
import { register } from 'tsx/esm/api';

// The CLI runs on the developer's Node (20 is supported here); Lambda runs 22+, so the SDK's notice is noise.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
await import('./keel.ts');
