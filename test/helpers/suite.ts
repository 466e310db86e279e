// suite.ts: uvu's suite, plus a note of the test that is running (for scripts/test.mjs, which
// names it when a file runs past its timeout). Every test file takes its suite from here.
import { writeFileSync } from 'node:fs';
import { suite as uvuSuite, type Test } from 'uvu';

const progress = process.env.MAMAKIT_TEST_PROGRESS;

export function suite(name: string): Test {
  const s = uvuSuite(name);
  if (progress) s.before.each((ctx) => writeFileSync(progress, `${ctx.__suite__} › ${ctx.__test__}`));
  return s;
}
