// `npm run fuzz [-- SECONDS]`: builds the libFuzzer targets of fuzz/ with clang (AddressSanitizer
// and UndefinedBehaviorSanitizer on the whole core) and runs each for SECONDS (default 60) on its
// corpus in fuzz/corpus/<target>, which keeps what the fuzzer finds interesting (commit it).
// A crash, a sanitizer report or an exception other than normlab::Error fails the run and leaves
// the reproducer in build/fuzz/artifacts/.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { installSystemPackages } from './setup.mjs';
import { has, root, run } from './lib.mjs';

const seconds = Number(process.argv[2] ?? 60);
if (!Number.isInteger(seconds) || seconds < 1) {
  console.error(`fuzz: SECONDS must be a positive integer, got '${process.argv[2]}'`);
  process.exit(2);
}
try {
  if (!has('/usr/bin/clang++-14') || !has('/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a')) {
    await installSystemPackages(['clang-14', 'libclang-rt-14-dev']);
  }
  const dir = join(root, 'build', 'fuzz');
  await run('cmake', ['-S', root, '-B', dir, '-DCMAKE_BUILD_TYPE=RelWithDebInfo', '-DNORMLAB_FUZZ=ON',
    '-DCMAKE_CXX_COMPILER=clang++-14'], { quiet: true });
  await run('cmake', ['--build', dir, '-j', '2'], { quiet: true });
  const artifacts = join(dir, 'artifacts');
  mkdirSync(artifacts, { recursive: true });
  for (const target of ['fuzz_config', 'fuzz_layer']) {
    const corpus = join(root, 'fuzz', 'corpus', target.replace('fuzz_', ''));
    console.log(`fuzz: ${target} for ${seconds} s on ${corpus}`);
    const { output } = await run(join(dir, 'fuzz', target), [corpus, `-max_total_time=${seconds}`,
      `-artifact_prefix=${artifacts}/`, '-print_final_stats=1', '-max_len=4096', '-rss_limit_mb=2048'], { quiet: true });
    const runs = output.match(/stat::number_of_executed_units:\s*(\d+)/)?.[1];
    console.log(`fuzz: ${target}: ${runs ?? '?'} inputs tried, no failure`);
  }
} catch (error) {
  console.error(`fuzz: ${error.message}`);
  process.exit(1);
}
