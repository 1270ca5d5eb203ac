// Counts the hostile inputs the suites try (bad arguments, options, configurations, flags, URLs and
// the user's own data files and arrays): each case calls `hostile(kind)`; tests/js/global-setup.ts
// prints the totals once per run.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';

export const HOSTILE_KINDS = ['layer API', 'runner config', 'model API', 'CLI', 'URL state', 'bad data'] as const;
export type HostileKind = (typeof HOSTILE_KINDS)[number];

declare module 'vitest' {
  export interface ProvidedContext {
    hostileDir: string;
  }
}

/** Records one hostile input of `kind` tried (test files run in several processes: one file each). */
export function hostile(kind: HostileKind): void {
  appendFileSync(join(inject('hostileDir'), `${process.pid}.log`), `${kind}\n`);
}
