// Once per Vitest run: a folder where the test processes record the hostile inputs they try
// (tests/js/hostile.ts), and at the end one line with the totals, which `npm test` repeats in its
// summary.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { HOSTILE_KINDS } from './hostile.js';

export default function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'normlab-hostile-'));
  project.provide('hostileDir', dir);
  return () => {
    const counts = new Map<string, number>(HOSTILE_KINDS.map((k) => [k, 0]));
    for (const file of readdirSync(dir)) {
      for (const kind of readFileSync(join(dir, file), 'utf8').split('\n').filter(Boolean)) {
        counts.set(kind, (counts.get(kind) ?? 0) + 1);
      }
    }
    rmSync(dir, { recursive: true, force: true });
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    process.stdout.write(`\nhostile inputs tried: ${total} (${[...counts].map(([k, n]) => `${k} ${n}`).join(', ')})\n`);
  };
}
