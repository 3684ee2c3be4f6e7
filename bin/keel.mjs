#!/usr/bin/env node
// Entry for `npx keel` and `npm start`: runs the TypeScript CLI through tsx, no build step.
import { register } from 'tsx/esm/api';

register();
await import('./keel.ts');
