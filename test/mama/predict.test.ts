// predict.test.ts: mama.loadRun on a run folder trained here for a few steps: its zero-shot
// probabilities are evaluation's own (the same numbers, image for image), its features have the
// model's widths, it is deterministic, it reads JPEG as well as PNG, it names what it cannot read,
// and on CUDA it agrees with the CPU.
import { suite } from '../helpers/suite.js';
import { cudaTest } from '../helpers/index.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { data, mama, nn } from 'mamakit';

const test = suite('predict');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-predict-'));
const out = join(dir, 'run');

const cfg = mama.defaultConfig('tiny');
cfg.model = {
  ...cfg.model,
  vit: { ...cfg.model.vit, imageSize: 32, patch: 8, width: 32, depth: 1, heads: 2, registers: 2 },
  text: { ...cfg.model.text, width: 32, depth: 1, heads: 2 },
  embed: 16, localHidden: 32, simclrOut: 16,
};
Object.assign(cfg, { data: join(dir, 'data'), synthStudies: 8, out, steps: 3, batch: 8, warmup: 1, lateStep: 2, evalEvery: 0, workers: 1 });

let run: mama.Run;
let set: data.EmbedImage[];

test.before(async () => {
  await mama.pretrain(cfg, { evaluate: false, log: () => {} });
  run = mama.loadRun(out);
  set = data.loadEmbed(join(cfg.data, 'metadata.csv'), join(cfg.data, 'clinical.csv'), cfg.data, cfg.seed).images;
});

test('zeroShot gives the probabilities evaluation computes, image for image', async () => {
  // Evaluation's path, built here from the exported pieces: the checkpoint, the eval loader's features, mama.zeroShot.
  const model = new mama.Mama(cfg.model, cfg.seed);
  new nn.ParamArena(model);
  nn.loadWeights(model, join(out, 'checkpoint', 'model.safetensors'));
  const tok = data.CaptionTokenizer.fromFile(cfg.tokenizer);
  const loader = new data.Loader(set, tok, { size: 32, batch: 32, seed: 0, train: false, maxTokens: cfg.model.maxTokens, workers: 1 });
  const f = await mama.imageFeatures(model, loader);
  await loader.close();
  const images = f.index.map((i) => set[i]);
  const mine = await run.encodeImages(images.map((im) => im.path));
  assert.equal(mine.image, f.image, 'global features');
  assert.equal(mine.pooled, f.pooled, 'pooled features');
  for (const task of ['density', 'birads'] as const) {
    const want = mama.zeroShot(model, tok, set, f, task, { maxTokens: cfg.model.maxTokens, pooling: cfg.pooling }).probs;
    const got = await run.zeroShot(images.map((im) => im.path), { task, meta: images.map((im) => im.fields) });
    assert.equal(got, want, task);
  }
});

test('features have the model widths; probabilities sum to 1; twice the same', async () => {
  const paths = set.slice(0, 3).map((im) => im.path);
  const f = await run.encodeImages(paths);
  assert.is(f.image.length, 3);
  for (const v of f.image) assert.is(v.length, cfg.model.embed);
  for (const p of f.pooled) assert.is(p.length, cfg.model.vit.width);
  const t = run.encodeTexts(['Breast composition: The breast is extremely dense.', 'Overall Assessment: The overall assessment is benign.']);
  assert.is(t.length, 2);
  for (const v of t) {
    assert.is(v.length, cfg.model.embed);
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5, `unit text rows: ${Math.hypot(...v)}`);
  }
  assert.is(run.model.training, false, 'evaluation mode');
  for (const [task, C] of [['density', 4], ['birads', 7]] as const) {
    const p = await run.zeroShot(paths, { task });
    assert.is(p.length, 3);
    for (const row of p) {
      assert.is(row.length, C);
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-9, `${task}: ${row}`);
    }
    assert.equal(await run.zeroShot(paths, { task }), p, `${task} again`);
    assert.equal(await run.zeroShot(f, { task }), p, `${task} from features`);
    // The meta segments enter the prompts.
    assert.not.equal(await run.zeroShot(f, { task, meta: { side: 'left', view: 'CC', age: '50' } }), p, `${task} with meta`);
  }
});

test('a JPEG reads as the loader reads it; an unreadable image or a missing run is named', async () => {
  const jpeg = join(dir, 'image.jpg');
  await sharp(set[0].path).jpeg({ quality: 95 }).toFile(jpeg);
  const px = await run.readImage(jpeg);
  assert.equal(px, await data.loadImage(jpeg, { size: 32 }));
  assert.equal(await run.zeroShot([jpeg], { task: 'density' }), await run.zeroShot([px], { task: 'density' }));
  const bad = join(dir, 'bad.png');
  writeFileSync(bad, 'not an image');
  try {
    await run.encodeImages([set[0].path, bad]);
    assert.unreachable('a corrupt image must throw');
  } catch (e) {
    assert.match((e as Error).message, /bad\.png: cannot decode it/);
  }
  assert.throws(() => mama.loadRun(join(dir, 'nothing')), /loadRun: .*nothing\/config\.json not found/);
});

cudaTest(test, 'on CUDA, the run in its precision (f32 here) gives the CPU\'s probabilities within f32 rounding', async () => {
  const paths = set.slice(0, 4).map((im) => im.path);
  const gpu = mama.loadRun(out, { device: 'cuda' });
  assert.is(gpu.model.device, 'cuda');
  assert.is(gpu.model.dtype, 'f32');
  for (const task of ['density', 'birads'] as const) {
    const a = await gpu.zeroShot(paths, { task }), b = await run.zeroShot(paths, { task });
    a.forEach((row, i) => row.forEach((v, c) => assert.ok(Math.abs(v - b[i][c]) < 1e-4, `${task} image ${i} class ${c}: ${v} vs ${b[i][c]}`)));
  }
});

test.run();
