// main.test.ts: the `mamakit` command as a user runs it: pretrain on a small config interrupted
// by Ctrl-C (SIGINT) saves a checkpoint and exits cleanly, --resume finishes the run (its progress
// bar as whole lines, stderr not being a terminal), eval reads the run folder back, --dry-run
// prints the memory plan without training, predict scores images with the run's checkpoint (a
// table, --json, an unreadable image named), and bad arguments are named with exit status 2.
import { suite } from '../helpers/suite.js';
import { smallMama } from '../helpers/index.js';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const test = suite('cli');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-cli-'));
const main = join('dist', 'lib', 'cli', 'main.js');
const small = smallMama.concat('--workers', '1');
const args = (out: string, steps: number) => ['pretrain', '--data', join(dir, 'data'), '--synth-studies', '16', '--out', out, '--steps', String(steps),
  '--batch', '8', '--late-step', '3', '--eval-every', '0', '--probe-steps', '20', '--set', 'warmup=2', '--set', 'checkpointEvery=1000', ...small];

test('Ctrl-C saves a checkpoint and exits 0; --resume finishes; eval reads the folder back', async () => {
  const out = join(dir, 'run');
  const child = spawn(process.execPath, [main, ...args(out, 400), '--no-eval'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const code = await new Promise<number | null>((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      // Interrupt once training has started (the first step's progress line).
      if (/ \d+\/400 /.test(err) && !child.killed) child.kill('SIGINT');
    });
    child.on('exit', (c) => resolve(c));
  });
  assert.is(code, 0, err.slice(-500));
  const m = err.match(/interrupted at step (\d+); checkpoint saved/);
  assert.ok(m, err.slice(-500));
  assert.ok(Number(m![1]) >= 1 && Number(m![1]) < 400);
  assert.ok(existsSync(join(out, 'checkpoint', 'state.safetensors')));
  const resumed = spawnSync(process.execPath, [main, ...args(out, 8), '--resume'], { encoding: 'utf8' });
  // --steps 8: the resumed run trains up to step 8 (nothing when the interruption came later) and evaluates.
  assert.is(resumed.status, 0, resumed.stderr.slice(-500));
  // Not a terminal: the progress bar is whole lines (the first step's and the last), not redraws.
  assert.not.match(resumed.stderr, /\r/);
  if (Number(m![1]) < 8) assert.match(resumed.stderr, /█+ 8\/8 loss \d+\.\d{3} \(all terms\) [\d.]+ samples\/s, .* left\n/);
  assert.match(resumed.stdout, /^done: \d+ steps; zero-shot density bACC \d\.\d{3}; report in /m);
  assert.ok(existsSync(join(out, 'eval.json')) && existsSync(join(out, 'report.md')));
  // eval on the test split reads the checkpoint back to the figures the run itself wrote.
  const written = readFileSync(join(out, 'eval.json'), 'utf8');
  const again = spawnSync(process.execPath, [main, 'eval', '--run', out], { encoding: 'utf8' });
  assert.is(again.status, 0, again.stderr.slice(-500));
  assert.is(readFileSync(join(out, 'eval.json'), 'utf8'), written, 'mamakit eval reproduces eval.json');
  const w = JSON.parse(written) as Record<string, number>;
  assert.ok(again.stdout.startsWith(`test: zero-shot density bACC ${w.zeroshot_density_bacc.toFixed(3)} AUC ${w.zeroshot_density_auc.toFixed(3)}, `), again.stdout);
  const ev = spawnSync(process.execPath, [main, 'eval', '--run', out, '--split', 'val', '--probe-steps', '10'], { encoding: 'utf8' });
  assert.is(ev.status, 0, ev.stderr.slice(-500));
  const v = JSON.parse(readFileSync(join(out, 'eval-val.json'), 'utf8')) as Record<string, number>;
  assert.ok(ev.stdout.startsWith(`val: zero-shot density bACC ${v.zeroshot_density_bacc.toFixed(3)} AUC ${v.zeroshot_density_auc.toFixed(3)}, `), ev.stdout);
});

test('predict prints each image\'s zero-shot probabilities; --json as one document; an unreadable image is named, the rest still scored', () => {
  const run = join(dir, 'run'), images = readdirSync(join(dir, 'data', 'images')).slice(0, 2).map((f) => join(dir, 'data', 'images', f));
  const bad = join(dir, 'bad.png');
  writeFileSync(bad, 'not an image');
  const json = spawnSync(process.execPath, [main, 'predict', '--run', run, '--json', ...images], { encoding: 'utf8' });
  assert.is(json.status, 0, json.stderr);
  const doc = JSON.parse(json.stdout) as { images: Array<{ path: string; density: Record<string, number>; birads: Record<string, number> }>; errors: unknown[] };
  assert.equal(doc.images.map((i) => i.path), images);
  assert.equal(doc.errors, []);
  for (const im of doc.images) {
    assert.equal(Object.keys(im.density), ['A', 'B', 'C', 'D']);
    assert.equal(Object.keys(im.birads), ['0', '1', '2', '3', '4', '5', '6']);
    for (const p of [im.density, im.birads]) assert.ok(Math.abs(Object.values(p).reduce((a, b) => a + b, 0) - 1) < 1e-9, JSON.stringify(p));
  }
  const table = spawnSync(process.execPath, [main, 'predict', '--run', run, images[0], bad, images[1]], { encoding: 'utf8' });
  assert.is(table.status, 1, table.stderr);
  assert.match(table.stderr, /^mamakit predict: image \S*bad\.png: cannot decode it \([^\n]+\)\n$/, 'one line naming the file');
  const lines = table.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^ +density +BI-RADS$/);
  assert.match(lines[1], /^image +best +A +B +C +D +best +0 +1 +2 +3 +4 +5 +6$/);
  assert.is(lines.length, 4, table.stdout);
  // Each row: the path, the most probable class and the probabilities of the JSON document to 3 decimals.
  doc.images.forEach((im, i) => {
    const best = (p: Record<string, number>) => Object.keys(p).reduce((a, b) => (p[b] > p[a] ? b : a));
    const cells = [best(im.density), ...Object.values(im.density).map((v) => v.toFixed(3)), best(im.birads), ...Object.values(im.birads).map((v) => v.toFixed(3))];
    assert.equal(lines[2 + i].trim().split(/ +/), [im.path, ...cells]);
  });
});

test('--dry-run prints the memory plan and exits 0 without training: the base preset at batch 36 in bf16 under 75 GiB', () => {
  const out = join(dir, 'dry');
  const plan = (...a: string[]) => {
    const r = spawnSync(process.execPath, [main, 'pretrain', '--preset', 'base', '--dry-run', '--device', 'cuda', '--batch', '36', '--out', out, ...a], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const peak = r.stdout.match(/\n {2}peak +(\d+\.\d\d) GiB\n/);
    assert.ok(peak, r.stdout);
    return { text: r.stdout, peak: Number(peak![1]) };
  };
  const on = plan();
  assert.match(on.text, /^MaMA memory plan: batch 36, 518 px \(1369 patches\), 144 tokens, bf16 on cuda, checkpointing on, all four loss terms\n/);
  assert.match(on.text, /frozen \(LoRA r8 on the text encoder\)/);
  assert.ok(on.peak < 75, on.text);
  const off = plan('--checkpoint', 'off');
  assert.match(off.text, /checkpointing off/);
  assert.ok(off.peak > 2 * on.peak, `${off.peak} GiB without checkpointing, ${on.peak} GiB with`);
  const clip = plan('--ablation', 'clip-only').text;
  assert.match(clip, /image-text term only/);
  assert.match(clip, /image encoder \(1 view/);
  assert.ok(!existsSync(out), 'a dry run writes nothing');
  assert.match(on.text, /\na step: 36 images × 8 micro-batches = 288 images\n/);
});

test('base under mpirun: the paper\'s 288 images a step shared by the ranks (accum round(8 / ranks)) unless --accum says otherwise', () => {
  const step = (ranks: string, ...a: string[]) => {
    const r = spawnSync(process.execPath, [main, 'pretrain', '--preset', 'base', '--dry-run', '--device', 'cuda', ...a], { encoding: 'utf8', env: { ...process.env, OMPI_COMM_WORLD_SIZE: ranks } });
    assert.is(r.status, 0, r.stderr);
    return /\na step: (.*)\n/.exec(r.stdout)?.[1];
  };
  assert.is(step('2'), '36 images × 4 micro-batches × 2 ranks = 288 images');
  assert.is(step('4'), '36 images × 2 micro-batches × 4 ranks = 288 images');
  assert.is(step('8'), '36 images × 1 micro-batches × 8 ranks = 288 images');
  assert.is(step('16'), '36 images × 1 micro-batches × 16 ranks = 576 images');
  assert.is(step('4', '--accum', '3'), '36 images × 3 micro-batches × 4 ranks = 432 images');
  assert.is(step('4', '--preset', 'tiny'), '32 images × 1 micro-batches × 4 ranks = 128 images');
});

test('bad arguments are named, with exit status 2', () => {
  const run = (...a: string[]) => spawnSync(process.execPath, [main, ...a], { encoding: 'utf8' });
  for (const [a, msg] of [
    [['pretrain', '--steps', 'ten'], /--steps must be a number, got ten/],
    [['pretrain', '--preset', 'huge'], /--preset must be one of tiny, base, got huge/],
    [['pretrain', '--set', 'model.vit.nope=1'], /--set model\.vit\.nope=1: no field nope/],
    [['pretrain', '--accum', '0', '--data', join(dir, 'none'), '--synth-studies', '0'], /accum must be an integer ≥ 1, got 0/],
    [['pretrain', '--workers', '0', '--data', join(dir, 'none'), '--synth-studies', '0'], /workers must be an integer ≥ 1, got 0/],
    [['pretrain', '--checkpoint', 'maybe'], /--checkpoint must be on or off, got maybe/],
    [['pretrain', '--gather', 'some'], /--gather must be ntxent, all or none, got some/],
    [['pretrain', '--set', 'gather=some', '--data', join(dir, 'none'), '--synth-studies', '0'], /gather must be ntxent, all or none, got some/],
    [['pretrain', '--set', 'syncBn=maybe'], /--set syncBn=maybe: syncBn must be true or false, got maybe/],
    [['pretrain', '--sync-bn=yes'], /'--sync-bn' does not take an argument/],
    [['pretrain', '--dry-run', '--precision', 'bf16'], /precision bf16 needs device cuda/],
    [['eval'], /--run DIR is required/],
    [['eval', '--run', join(dir, 'nothing')], /config\.json not found/],
    [['eval', '--run', join(dir, 'run'), '--split', 'train'], /--split must be test or val, got train/],
    [['synth'], /--out DIR is required/],
    [['predict', 'x.png'], /--run DIR is required/],
    [['predict', '--run', join(dir, 'nothing'), 'x.png'], /config\.json not found/],
    [['predict', '--run', join(dir, 'run')], /give one or more IMAGE files/],
    [['predict', '--run', join(dir, 'run'), '--meta', 'colour=red', 'x.png'], /--meta takes field=value with a field of procedure, reason/],
  ] as const) {
    const r = run(...a);
    assert.is(r.status, 2, `${a.join(' ')}: status ${r.status}`);
    assert.match(r.stderr, msg);
  }
  const h = run('--help');
  assert.is(h.status, 0);
  assert.match(h.stdout + h.stderr, /usage: mamakit pretrain/);
  assert.match(h.stdout + h.stderr, /mamakit predict --run DIR/);
});

test.run();
