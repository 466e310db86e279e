// pack-node-kit.mjs: what a GPU machine without Node needs to build the addon and run the tests
// there (bench/gpu.sh unpacks it): this Node binary, the production dependencies and the test
// runner's (uvu), and the compiled library and tests (dist/), as .gpu-kit/node-kit.tar.xz
// (git-ignored; the device call carries .gpu-kit). Run it after `npm install`:
//   node scripts/pack-node-kit.mjs        # prints the kit's size; fails above 40 MiB
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { root } from './build-if-needed.mjs';

const kitDir = join(root, '.gpu-kit');
const kit = join(kitDir, 'node-kit.tar.xz');
const limit = 40 * 2 ** 20;

// Folders of a package's dependencies, found as Node finds them (nested node_modules first).
function packageDir(name, from) {
  for (let d = from; ; d = dirname(d)) {
    const p = join(d, 'node_modules', name);
    if (existsSync(join(p, 'package.json'))) return p;
    if (d === root || d === dirname(d)) throw new Error(`pack-node-kit: ${name} (needed by ${relative(root, from) || 'mamakit'}) is not installed; run npm install`);
  }
}
function closure(names, from, seen = new Set()) {
  for (const name of names) {
    const dir = packageDir(name, from);
    if (seen.has(dir)) continue;
    seen.add(dir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const optional = Object.keys(pkg.optionalDependencies ?? {}).filter((n) => {
      try {
        return !!packageDir(n, dir);
      } catch {
        return false; // another platform's build
      }
    });
    closure([...Object.keys(pkg.dependencies ?? {}).filter((n) => !(n in (pkg.optionalDependencies ?? {}))), ...optional], dir, seen);
  }
  return seen;
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const dirs = [...closure([...Object.keys(pkg.dependencies), 'uvu'], root)].map((d) => relative(root, d)).sort();
execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });

// Node itself goes in as .gpu-kit/bin/node (the kit unpacks at the repository's root).
const staging = join(kitDir, 'bin');
rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
execFileSync('cp', [process.execPath, join(staging, 'node')]);
const members = ['.gpu-kit/bin/node', 'dist', ...dirs];
execFileSync('tar', ['-cf', kit, '--use-compress-program=xz -9 -T2', '--exclude=*.map', '--exclude=*.d.ts', '--exclude=dist/.tsbuildinfo', '-C', root, ...members]);
rmSync(staging, { recursive: true, force: true });
const bytes = statSync(kit).size;
console.log(`${relative(root, kit)}: ${(bytes / 2 ** 20).toFixed(1)} MiB (Node ${process.version}, ${dirs.length} packages, dist/)`);
if (bytes > limit) {
  console.error(`pack-node-kit: the kit is over ${limit / 2 ** 20} MiB`);
  process.exitCode = 1;
}
