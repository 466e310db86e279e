// finetune.test.ts: the protocols on augmented images (lib/mama/finetune.ts, MAMA.md §6): SGD
// with decay on every parameter against a float64 torch.optim.SGD, the warm-up + cosine values,
// random (not stratified) label fractions and class-balanced draws with replacement, the frozen
// encoder left bit-identical and the fine-tuned copy trained (the caller's model and the final
// LayerNorm untouched), a separable task learned, `mamakit eval`'s flags, and CUDA against the CPU.
// Run: node scripts/test.mjs --no-build test/mama/finetune
import { suite } from '../helpers/suite.js';
import { assertClose, assertIdentical, cudaTest, Rng } from '../helpers/index.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { kernels, mama, nn, optim, Tensor } from 'mamakit';
import { mulberry } from '../../lib/data/rand.js';

const test = suite('finetune');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-finetune-'));

const tinyCfg: mama.MamaConfig = {
  vit: { imageSize: 32, patch: 8, channels: 1, width: 32, depth: 1, heads: 2, mlpRatio: 2, registers: 2, layerScale: 0.1, eps: 1e-6 },
  text: { vocab: 788, positions: 144, width: 32, depth: 1, heads: 2, eps: 1e-5, scaleByLayer: true },
  embed: 16, localHidden: 32, simclrOut: 16, maxTokens: 144, maxSentences: 12,
};

function model(device: 'cpu' | 'cuda' = 'cpu', seed = 0): { m: mama.Mama; arena: nn.ParamArena } {
  const m = new mama.Mama(tinyCfg, seed);
  return { m, arena: new nn.ParamArena(m, { device }) };
}

// Stripes 4 px on, 4 px off, horizontal (class 0) or vertical (class 1), random phase and noise:
// the authors' augmentation (crops of 3/4–4/3 aspect, flips, jitter, blur) keeps the orientation.
async function stripes(n: number, sub: string, seed: number): Promise<mama.Labelled[]> {
  const rng = new Rng(seed), S = 48, out: mama.Labelled[] = [];
  mkdirSync(join(dir, sub), { recursive: true });
  for (let i = 0; i < n; i++) {
    const label = i % 2, phase = rng.int(0, 7), px = new Uint8Array(S * S);
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) px[y * S + x] = Math.max(0, Math.min(255, (((label ? x : y) + phase) % 8 < 4 ? 200 : 40) + 25 * rng.normal()));
    const path = join(dir, sub, `${i}.png`);
    await sharp(px, { raw: { width: S, height: S, channels: 1 } }).png().toFile(path);
    out.push({ path, label });
  }
  return out;
}
const sets = (async () => ({ train: await stripes(48, 'train', 1), test: await stripes(40, 'test', 2) }))();

test('SGD with decay on every parameter is torch.optim.SGD (float64 reference, 4 steps of the warm-up schedule)', () => {
  const rng = new Rng(3), mu = 0.9, wd = 1e-2;
  const run = (decayAll: boolean) => {
    const lin = new nn.Linear(5, 3, new nn.InitRng(4));
    lin.bias!.init.set(Float32Array.from({ length: 3 }, () => rng.uniform()));
    // Arena order: the weight [3, 5] (decay group), then the bias [3].
    const arena = new nn.ParamArena(lin), opt = new optim.SGD(arena, { lr: 0, momentum: mu, weightDecay: wd, decayAll });
    const p = Float64Array.from(arena.values.toArray()), buf = new Float64Array(p.length), bias = 15;
    for (let step = 0; step < 4; step++) {
      const g = Float32Array.from({ length: p.length }, () => rng.uniform());
      kernels.copy(Tensor.fromArray(g, [g.length]), arena.grads);
      const lr = mama.headLr(step, { steps: 10, warmup: 3, lr: 0.1, lrMin: 1e-3 });
      opt.update(lr);
      // torch.optim.SGD (dampening 0, no Nesterov): d = g + wd·p; buf = d at the first step, then mu·buf + d; p −= lr·buf
      for (let i = 0; i < p.length; i++) {
        const d = g[i] + (decayAll || i < bias ? wd : 0) * p[i];
        buf[i] = step === 0 ? d : mu * buf[i] + d;
        p[i] -= lr * buf[i];
      }
    }
    assertClose(arena.values.toArray(), p, { atol: 1e-7, rtol: 1e-6, what: `SGD parameters after 4 steps (decayAll ${decayAll})` });
    assertClose(opt.buf.toArray(), buf, { atol: 1e-7, rtol: 1e-6, what: `SGD momentum buffer (decayAll ${decayAll})` });
  };
  run(true);
  run(false);
});

test('warm-up then cosine: linear to lr over the warm-up, lr at its end, lrMin + (lr − lrMin)/2 halfway, falling to lrMin', () => {
  const o = { steps: 8000, warmup: 100, lr: 5e-4, lrMin: 1e-5 };
  const ref = (s: number) => (s < 100 ? (5e-4 * (s + 1)) / 100 : 1e-5 + 0.5 * (5e-4 - 1e-5) * (1 + Math.cos((Math.PI * (s - 100)) / 7900)));
  for (const s of [0, 1, 49, 99, 100, 101, 2000, 4050, 7000, 7999]) assert.ok(Math.abs(mama.headLr(s, o) - ref(s)) <= 1e-18, `step ${s}: ${mama.headLr(s, o)} vs ${ref(s)}`);
  assert.is(mama.headLr(0, o), 5e-6);
  assert.is(mama.headLr(99, o), 5e-4);
  assert.is(mama.headLr(100, o), 5e-4);
  assert.ok(Math.abs(mama.headLr(4050, o) - 2.55e-4) < 1e-15);
  assert.ok(mama.headLr(7999, o) > 1e-5 && mama.headLr(7999, o) < 1.0001e-5);
  assert.is(mama.headLr(8000, o), 1e-5);
  // No warm-up: the cosine starts at lr.
  assert.is(mama.headLr(0, { ...o, warmup: 0 }), 5e-4);
});

test('random label fractions are not stratified: a rare class is sometimes left out; sizes, distinct rows, seeded', () => {
  // 1000 rows, 50 of class 1: a 1 % draw (10 rows) misses class 1 with probability C(950,10)/C(1000,10) = 0.597.
  const labels = Array.from({ length: 1000 }, (_, i) => (i % 20 === 0 ? 1 : 0));
  let missing = 0;
  for (let seed = 0; seed < 400; seed++) {
    const s = mama.randomSubset(1000, 0.01, mulberry(seed));
    assert.is(s.length, 10);
    assert.is(new Set(s).size, 10, 'distinct rows');
    assert.ok(s.every((i) => Number.isInteger(i) && i >= 0 && i < 1000));
    if (!s.some((i) => labels[i] === 1)) missing++;
  }
  // 400 draws: mean 239, sd 9.8; a stratified draw would never miss the class.
  assert.ok(missing > 200 && missing < 280, `${missing} of 400 subsets without class 1`);
  assert.equal(mama.randomSubset(1000, 0.1, mulberry(5)), mama.randomSubset(1000, 0.1, mulberry(5)), 'seeded');
  assert.is(mama.randomSubset(7, 0.01, mulberry(1)).length, 1, 'at least one row');
  assert.is(mama.randomSubset(7, 1, mulberry(1)).length, 7);
  assert.throws(() => mama.randomSubset(10, 0, mulberry(1)), /randomSubset: fraction must be in \(0, 1\], got 0/);
  assert.throws(() => mama.randomSubset(0, 0.5, mulberry(1)), /randomSubset: n must be an integer ≥ 1, got 0/);
});

test('class-balanced draws with replacement: every class equally likely, every row of a class equally likely, only the subset', () => {
  // Subset: 900 rows of class 0, 90 of class 1, 10 of class 2 (rows 0..999); rows 1000..1099 are outside it.
  const labels = Array.from({ length: 1100 }, (_, i) => (i < 900 ? 0 : i < 990 ? 1 : i < 1000 ? 2 : 1));
  const subset = Array.from({ length: 1000 }, (_, i) => i), n = 30000;
  const d = mama.balancedDraw(labels, subset, n, mulberry(11));
  assert.is(d.length, n);
  assert.ok(d.every((i) => i < 1000), 'a row outside the subset was drawn');
  const perClass = [0, 0, 0], perRow = new Map<number, number>();
  for (const i of d) perClass[labels[i]]++, perRow.set(i, (perRow.get(i) ?? 0) + 1);
  // Each class 1/3: sd of a count sqrt(n·(1/3)(2/3)) = 82; within 6 sd.
  for (const c of perClass) assert.ok(Math.abs(c - n / 3) < 500, `class counts ${perClass}`);
  // Class 2's 10 rows: 1000 draws each, sd 31; with replacement (a batch repeats rows).
  for (let i = 990; i < 1000; i++) assert.ok(Math.abs((perRow.get(i) ?? 0) - 1000) < 190, `row ${i}: ${perRow.get(i)}`);
  const batch = mama.balancedDraw(labels, subset, 72, mulberry(2));
  assert.ok(new Set(batch.filter((i) => labels[i] === 2)).size < batch.filter((i) => labels[i] === 2).length, 'class 2 rows repeat within a batch of 72');
  // A class absent from the subset is never drawn.
  assert.ok(mama.balancedDraw(labels, subset.slice(0, 900), 500, mulberry(3)).every((i) => labels[i] === 0));
});

test('frozen: the encoder stays bit-identical; fine-tune: a copy trains, the caller and the final LayerNorm do not move', async () => {
  const { train, test: held } = await sets;
  const { m } = model();
  // The caller's parameters as the model reads them: the same tensors (views of its arena), the same values.
  const snap = () => m.namedParameters().map(([n, p]) => [n, p.value, p.value.toArray()] as const);
  const before = snap();
  const untouched = (what: string) =>
    snap().forEach(([n, t, v], i) => {
      assert.ok(t === before[i][1], `${what}: ${n} is no longer a view of the caller's arena`);
      assertIdentical(v, before[i][2], `${what}: ${n}`);
    });
  m.training = true;
  const o = { steps: 3, batch: 8, warmup: 1, lr: 0.05, seed: 4, workers: 1 };
  const frozen = await mama.trainHead(m, train, held, 2, { ...o, encoder: 'frozen' });
  untouched('the model after the frozen protocol');
  assert.is(m.training, true, "the caller's mode is restored");
  assert.is(frozen.encoder, null);
  assert.is(frozen.losses.length, 3);
  assert.is(frozen.labels.length, held.length);
  // weightDecay 0: only gradients can move the copy's weights.
  const fine = await mama.trainHead(m, train, held, 2, { ...o, encoder: 'train', weightDecay: 0 });
  untouched('the model after the fine-tune');
  const src = new Map(m.image.namedParameters()), copy = fine.encoder!;
  let moved = 0, total = 0;
  for (const [name, p] of copy.namedParameters()) {
    const a = p.value.toArray(), b = src.get(name)!.value.toArray();
    if (name.startsWith('layernorm.')) {
      assertIdentical(a, b, `final LayerNorm ${name}`);
      assert.is(p.requiresGrad, false, `${name} is frozen`);
      continue;
    }
    total++;
    if (a.some((v, i) => v !== b[i])) moved++;
  }
  assert.ok(moved === total, `${moved} of ${total} encoder tensors changed`);
  // The same seed repeats the run exactly (draws and augmentations follow it).
  const again = await mama.trainHead(m, train, held, 2, { ...o, encoder: 'frozen' });
  assert.equal(again.losses, frozen.losses);
  assert.equal(again.probs, frozen.probs);
});

test('a separable task: fine-tuning a random-init encoder learns stripe orientation under the augmentation', async () => {
  const { train, test: held } = await sets;
  // Width 64 and LayerScale 1: the block's nonlinearity reaches the pooled feature (a mean of
  // linear patch embeddings cannot tell the orientation of stripes of random phase). lr 0.1 for
  // 100 steps reached 0.90–1.0 with ten seeds; the frozen random encoder's probe 0.5.
  const m = new mama.Mama({ ...tinyCfg, vit: { ...tinyCfg.vit, width: 64, layerScale: 1 } }, 9);
  new nn.ParamArena(m);
  const r = await mama.trainHead(m, train, held, 2, { encoder: 'train', steps: 100, batch: 16, warmup: 5, lr: 0.1, seed: 1, workers: 1 });
  const bacc = mama.balancedAccuracy(r.labels, r.pred, 2);
  assert.ok(bacc >= 0.8, `balanced accuracy ${bacc} (chance 0.5); losses ${r.losses[0].toFixed(3)} → ${r.losses.at(-1)!.toFixed(3)}`);
});

test('bad options are named', async () => {
  const { train, test: held } = await sets;
  const { m } = model();
  const bad: Array<[Partial<mama.HeadOptions>, RegExp]> = [
    [{ encoder: 'thawed' as 'train' }, /trainHead: encoder must be frozen or train, got thawed/],
    [{ steps: 0 }, /trainHead: steps must be an integer ≥ 1, got 0/],
    [{ batch: 2.5 }, /trainHead: batch must be an integer ≥ 1, got 2.5/],
    [{ fraction: 1.5 }, /trainHead: fraction must be in \(0, 1\], got 1.5/],
    [{ lr: NaN }, /trainHead: lr must be a finite number ≥ 0, got NaN/],
    [{ warmup: -1 }, /trainHead: warmup must be an integer ≥ 0, got -1/],
  ];
  for (const [o, re] of bad) {
    const err = await mama.trainHead(m, train, held, 2, { encoder: 'frozen', steps: 1, ...o }).then(() => null, (e: Error) => e);
    assert.ok(err instanceof RangeError && re.test(err.message), `${JSON.stringify(o)}: ${err}`);
  }
  const err = await mama.trainHead(m, [{ path: train[0].path, label: 2 }], held, 2, { encoder: 'frozen' }).then(() => null, (e: Error) => e);
  assert.match(String(err), /trainHead: label 2 of training image 0 is not in \[0, 2\)/);
});

cudaTest(test, 'cuda (f32): a fine-tune matches the CPU run of the same seed', async () => {
  const { train, test: held } = await sets;
  const o = { encoder: 'train' as const, steps: 3, batch: 8, warmup: 1, lr: 0.05, seed: 2, workers: 1 };
  const cpu = await mama.trainHead(model('cpu').m, train, held.slice(0, 12), 2, o);
  const gpu = await mama.trainHead(model('cuda').m, train, held.slice(0, 12), 2, o);
  assert.is(gpu.encoder!.patchW.value.device, 'cuda');
  assertClose(gpu.losses, cpu.losses, { atol: 1e-5, rtol: 1e-4, what: 'losses per step' });
  assertClose(gpu.probs.flat(), cpu.probs.flat(), { atol: 1e-4, rtol: 0, what: 'test probabilities' });
  assertClose(gpu.encoder!.patchW.value.toArray(), cpu.encoder!.patchW.value.toArray(), { atol: 1e-5, rtol: 1e-4, what: 'fine-tuned patch embedding' });
});

test('mamakit eval --probe-protocol authors --finetune: the rows, eval.json and report.md; bad flags are named', async () => {
  const c = mama.defaultConfig('tiny');
  c.model = tinyCfg;
  Object.assign(c, { data: join(dir, 'data'), synthStudies: 16, out: join(dir, 'run'), steps: 2, batch: 8, warmup: 1, lateStep: 1, checkpointEvery: 2, evalEvery: 0, workers: 1 });
  await mama.pretrain(c, { evaluate: false, log: () => {} });
  const main = join('dist', 'lib', 'cli', 'main.js');
  const r = spawnSync(process.execPath, [main, 'eval', '--run', c.out, '--probe-protocol', 'authors', '--probe-steps', '3', '--finetune', '--finetune-steps', '2', '--head-batch', '8'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr.slice(-800));
  assert.match(r.stdout, /full fine-tune 100 %: density bACC \d\.\d{3}/);
  const ev = JSON.parse(readFileSync(join(c.out, 'eval.json'), 'utf8')) as Record<string, number | string>;
  assert.is(ev.probe_protocol, 'authors');
  for (const task of ['density', 'birads'])
    for (const k of ['probe1', 'probe10', 'probe100', 'random_probe100', 'finetune1', 'finetune10', 'finetune100', 'random_finetune100'])
      for (const m of ['bacc', 'auc']) {
        const v = ev[`${k}_${task}_${m}`];
        assert.ok(typeof v === 'number' && v >= 0 && v <= 1, `${k}_${task}_${m} = ${v}`);
      }
  // Each row trained for the steps asked: the log names them.
  assert.match(r.stderr, /probe100_density: bACC \d\.\d{3}, AUC \d\.\d{3} \(3 steps/);
  assert.match(r.stderr, /random_finetune100_birads: bACC \d\.\d{3}, AUC \d\.\d{3} \(2 steps/);
  const report = readFileSync(join(c.out, 'report.md'), 'utf8');
  assert.match(report, /linear probe: the authors' protocol \(augmented images through the frozen encoder every step\), 3 SGD steps of 8, warm-up 1, lr 0\.05 cosine to 1e-5/);
  assert.match(report, /full fine-tune: 2 SGD steps of 8, warm-up 1/);
  assert.match(report, /\| full fine-tune 10 % \| [\d.]+ \|/);
  assert.match(report, /\| random-init encoder, full fine-tune 100 % \| [\d.]+ \|/);
  const bad: Array<[string[], RegExp]> = [
    [['--probe-protocol', 'paper'], /--probe-protocol must be cached or authors, got paper/],
    [['--finetune', '--finetune-steps', '0'], /--finetune-steps must be an integer ≥ 1, got 0/],
    [['--finetune', '--finetune-steps', 'many'], /--finetune-steps must be a number, got many/],
    [['--finetune', '--head-batch', '7.5'], /--head-batch must be an integer ≥ 1, got 7\.5/],
    [['--finetune', '--head-warmup=-1'], /--head-warmup must be an integer ≥ 0, got -1/],
    [['--finetune', '--finetune-lr=-0.1'], /--finetune-lr must be ≥ 0, got -0\.1/],
    [['--finetune-steps', '10'], /--finetune-steps and --finetune-lr need --finetune/],
    [['--head-batch', '8'], /--head-batch and --head-warmup need --finetune or --probe-protocol authors/],
    [['--probe-protocol', 'authors', '--probe-steps', '0'], /authorsProbeSteps must be an integer ≥ 1, got 0/],
  ];
  for (const [flags, re] of bad) {
    const b = spawnSync(process.execPath, [main, 'eval', '--run', c.out, ...flags], { encoding: 'utf8' });
    assert.is(b.status, 2, `${flags.join(' ')}: status ${b.status}, ${b.stderr}`);
    assert.match(b.stderr, re, flags.join(' '));
  }
});

test.run();
