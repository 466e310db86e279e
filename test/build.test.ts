// build.test.ts: the node-gyp build (binding.gyp, CPU only) compiles offline and its addon
// passes a smoke test in a child process: the same ops, through MAMAKIT_ADDON. The result is
// cached in build-gyp/ and rebuilt when native sources or binding.gyp change.
import { suite } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const test = suite('build');
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const gypDir = join(root, 'build-gyp');
const addon = join(gypDir, 'build', 'Release', 'mamakit.node');

function newestSource(): number {
  let t = statSync(join(root, 'binding.gyp')).mtimeMs;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else t = Math.max(t, statSync(p).mtimeMs);
    }
  };
  walk(join(root, 'native'));
  return t;
}

function nodeDir(): string[] {
  // Node's own headers (Debian ships them in /usr/include/node): no download.
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

test('node-gyp builds the addon and it runs matmul', () => {
  if (!existsSync(addon) || statSync(addon).mtimeMs < newestSource()) {
    rmSync(gypDir, { recursive: true, force: true });
    mkdirSync(gypDir, { recursive: true });
    cpSync(join(root, 'binding.gyp'), join(gypDir, 'binding.gyp'));
    cpSync(join(root, 'native'), join(gypDir, 'native'), { recursive: true });
    const gyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    execFileSync(process.execPath, [gyp, 'rebuild', '--jobs=max', ...nodeDir()], { cwd: gypDir, stdio: ['ignore', 'ignore', 'pipe'] });
  }
  assert.ok(existsSync(addon), 'node-gyp produced no addon');
  // Node opens addons lazily: a kernel missing from binding.gyp would only fail when called.
  const undefinedMk = execFileSync('nm', ['-D', '--undefined-only', '-C', addon]).toString().split('\n').filter((l) => / mk::/.test(l));
  assert.equal(undefinedMk, [], `mamakit symbols left undefined in the node-gyp build: ${undefinedMk.join(', ')}`);
  const script = `
    import { kernels, Tensor, buildInfo, backends } from 'mamakit';
    const a = Tensor.fromArray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    const b = Tensor.fromArray(new Float32Array([1, 0, 0, 1, 1, 1]), [3, 2]);
    const c = kernels.matmul(a, b, { bias: Tensor.fromArray(new Float32Array([10, 20]), [2]) });
    const ln = kernels.layerNorm(a, null, null).y.toArray();
    const g = kernels.gelu(a, { approximate: 'tanh' }).toArray();
    console.log(JSON.stringify({ build: buildInfo().buildSystem, backends: backends(), c: Array.from(c.toArray()), ln: ln[2], g: g[5] }));`;
  const env: NodeJS.ProcessEnv = { ...process.env, MAMAKIT_ADDON: addon };
  delete env.MAMAKIT_CUDA_LIB; // the emulated library the CUDA tests use: this addon is checked as installed
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, env });
  const r = JSON.parse(out.toString());
  assert.is(r.build, 'node-gyp');
  assert.equal(r.backends, ['cpu']);
  assert.equal(r.c, [14, 25, 20, 31]);
  assert.ok(Math.abs(r.ln - Math.sqrt(1.5)) < 1e-3 && Math.abs(r.g - 6) < 1e-5, `layerNorm ${r.ln}, gelu ${r.g}`);
});

const cudaLib = join(root, 'build', 'Release', 'libmamakit_cuda.so');
const nvccBuilt = existsSync(cudaLib);
if (!nvccBuilt) console.log('  skip: the nvcc-built CUDA library case (libmamakit_cuda.so is not built: no nvcc when npm install ran)');
(nvccBuilt ? test : test.skip)('the nvcc-built CUDA library loads and its probe answers: checks pass on a GPU, or it says why not', () => {
  const lib = cudaLib;
  const r = spawnSync(join(root, 'build', 'Release', 'backend_ops'), ['--lib', lib], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status === 2) assert.match(r.stderr, /^CUDA unavailable: (no driver|no device): /m);
  else assert.match(r.stdout, /^checks: \d+ passed, 0 failed$/m, r.stdout.split('\n').filter((l) => l.startsWith('FAIL')).join('\n'));
});

test.run();
