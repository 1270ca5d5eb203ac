// Shared helpers of the project's scripts: plain Node, no dependencies (they run before npm ci).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// Debian's emcc needs NODE_PATH to find acorn.
export const toolEnv = {
  ...process.env,
  NODE_PATH: [process.env.NODE_PATH, '/usr/share/nodejs'].filter(Boolean).join(':'),
};

/**
 * Runs a command, streaming its output, and resolves with what it printed. Rejects on a non-zero
 * exit unless `allowFailure`, in which case the exit code is in the result.
 */
export function run(cmd, args, { cwd = root, env = toolEnv, quiet = false, allowFailure = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const take = (stream, sink) => stream.on('data', (chunk) => {
      output += chunk;
      if (!quiet) sink.write(chunk);
    });
    take(child.stdout, process.stdout);
    take(child.stderr, process.stderr);
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 || allowFailure) resolve({ code, output });
      else {
        if (quiet) process.stderr.write(output);
        reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`));
      }
    });
  });
}

export function nodeBin(name) {
  return join(root, 'node_modules', '.bin', name);
}

export function has(path) {
  return existsSync(path);
}
