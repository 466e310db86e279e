// build-if-needed.mjs: rebuilds the addon (cmake-js) when a native source, CMakeLists.txt or
// package.json is newer than build/Release/mamakit.node, then compiles the TypeScript.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function newest(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((e) => newest(join(path, e))));
}

export function buildIfNeeded({ quiet = false } = {}) {
  const addon = join(root, 'build', 'Release', 'mamakit.node');
  const sources = Math.max(newest(join(root, 'native')), newest(join(root, 'CMakeLists.txt')));
  const stdio = quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit';
  if (!existsSync(addon) || statSync(addon).mtimeMs < sources) {
    execFileSync(process.execPath, [join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js'), 'compile'], { cwd: root, stdio });
  }
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) buildIfNeeded();
