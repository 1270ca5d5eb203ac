// Installs what building and testing normlab needs and a fresh machine lacks:
//   system: g++, cmake, Emscripten, Eigen, nlohmann-json, GoogleTest, Chromium (Debian/Ubuntu: apt-get)
//   npm:    the devDependencies (npm ci), when node_modules is missing or older than the lockfile.
// Elsewhere it prints what to install. Idempotent: does nothing when everything is there.
import { lstatSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { has, root, run } from './lib.mjs';

const requirements = [
  { pkg: 'g++', what: 'a C++17 compiler', found: () => has('/usr/bin/g++') },
  { pkg: 'cmake', what: 'CMake >= 3.16', found: () => has('/usr/bin/cmake') },
  { pkg: 'emscripten', what: 'Emscripten (emcc, em++, emcmake)', found: () => has('/usr/bin/emcmake') || onPath('emcmake') },
  { pkg: 'libeigen3-dev', what: 'Eigen 3.4 headers', found: () => has('/usr/include/eigen3/Eigen/Core') },
  { pkg: 'nlohmann-json3-dev', what: 'nlohmann/json headers', found: () => has('/usr/include/nlohmann/json.hpp') },
  { pkg: 'libgtest-dev', what: 'GoogleTest', found: () => has('/usr/include/gtest/gtest.h') },
  { pkg: 'chromium', what: "Debian's Chromium (the playground's browser tests)", found: () => has('/usr/bin/chromium') },
];

function onPath(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function installSystemPackages(packages) {
  if (packages.length === 0) return;
  if (!onPath('apt-get')) {
    throw new Error(`normlab needs: ${packages.join(', ')}. This is not a Debian/Ubuntu system: ` +
      'install them with your package manager (Emscripten >= 3.1, Eigen >= 3.3, nlohmann-json >= 3.9, GoogleTest).');
  }
  const isRoot = process.getuid?.() === 0;
  const sudo = isRoot ? [] : ['sudo', '-n'];
  if (!isRoot && !onPath('sudo')) {
    throw new Error(`normlab needs: ${packages.join(', ')}. Run as root: apt-get install -y ${packages.join(' ')}`);
  }
  console.log(`setup: installing ${packages.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const [cmd, ...pre] = sudo.length ? sudo : ['apt-get'];
  const args = (rest) => (sudo.length ? [...pre, 'apt-get', ...rest] : rest);
  await run(cmd, args(['update', '-q']), { env, quiet: true });
  await run(cmd, args(['install', '-y', '-q', '--no-install-recommends', ...packages]), { env, quiet: true });
}

async function main() {
  const missing = requirements.filter((r) => !r.found());
  await installSystemPackages(missing.map((r) => r.pkg));
  const stillMissing = requirements.filter((r) => !r.found());
  if (stillMissing.length) {
    throw new Error(`still missing after install: ${stillMissing.map((r) => r.what).join(', ')}`);
  }
  const stamp = join(root, 'node_modules', '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  if (!has(stamp) || statSync(stamp).mtimeMs < statSync(lock).mtimeMs) {
    // A node_modules that is a symlink is shared with another checkout (a git worktree): npm ci
    // would empty the folder it points to under the other checkout's feet. Leave it alone.
    if (lstatSync(join(root, 'node_modules'), { throwIfNoEntry: false })?.isSymbolicLink()) {
      console.log(`setup: node_modules is a symlink to ${readlinkSync(join(root, 'node_modules'))}; not running npm ci over it ` +
        '(run npm ci where it points if the lockfile changed)');
      return;
    }
    console.log('setup: npm ci');
    await run('npm', ['ci', '--no-audit', '--no-fund'], { quiet: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(`setup: ${error.message}`);
    process.exit(1);
  });
}
