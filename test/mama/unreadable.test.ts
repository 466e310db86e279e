// unreadable.test.ts: images that cannot be decoded, in a generated folder: a few are named on
// the console as training finds them and counted, with examples, in the run's report.md; a run
// whose data is mostly unreadable stops with a message naming the count and examples; a batch
// dropped for want of readable images does not stop the epochs after it.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data, io, mama } from 'mamakit';

const test = suite('unreadable images');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-unreadable-'));

// The tiny preset narrowed to one small layer per encoder at 32 px: only the data path matters here.
function config(folder: string, out: string): mama.TrainConfig {
  const c = mama.defaultConfig('tiny'), m = c.model, small = { width: 32, depth: 1, heads: 2 };
  c.model = { ...m, vit: { ...m.vit, ...small, imageSize: 32, patch: 8 }, text: { ...m.text, ...small }, embed: 16, localHidden: 32, simclrOut: 16 };
  return Object.assign(c, { data: folder, synthStudies: 0, out, steps: 8, batch: 4, warmup: 1, lateStep: 2, checkpointEvery: 8, evalEvery: 0, workers: 1 });
}

/** A synthetic folder with the first `n` training images overwritten by bytes that are not a PNG. */
function corrupt(name: string, n: number): { folder: string; paths: string[]; train: number } {
  const folder = join(dir, name);
  cpSync(join(dir, 'clean'), folder, { recursive: true });
  const { images } = data.loadEmbed(join(folder, 'metadata.csv'), join(folder, 'clinical.csv'), folder, 0);
  const train = images.filter((i) => i.split === 'train');
  const paths = train.slice(0, n).map((i) => i.path);
  for (const p of paths) writeFileSync(p, 'not a png');
  return { folder, paths, train: train.length };
}

test('a few unreadable images reach the console and report.md; a mostly unreadable set stops the run', async () => {
  await data.generateStudies({ out: join(dir, 'clean'), studies: 10, size: 40, seed: 3 });
  const some = corrupt('some', 4);
  let logged = '';
  await mama.pretrain(config(some.folder, join(dir, 'run-some')), { evaluate: false, log: (l) => void (logged += l) });
  const named = logged.match(/skipping an unreadable image: image .*: cannot decode it/g) ?? [];
  assert.is(named.length, 3, logged); // the first three as found
  assert.ok(logged.includes(`4 of ${some.train} images could not be read (skipped): image `), logged); // after training: every image was tried
  const report = readFileSync(join(dir, 'run-some', 'report.md'), 'utf8');
  assert.ok(report.includes(`4 of ${some.train} images could not be read (skipped): image `) && report.includes('…'), report);
  assert.ok(some.paths.filter((p) => report.includes(p)).length === 3, report);

  const most = corrupt('most', Math.ceil(0.6 * some.train));
  let error: Error | undefined;
  try {
    await mama.pretrain(config(most.folder, join(dir, 'run-most')), { evaluate: false, log: () => {} });
  } catch (e) {
    error = e as Error;
  }
  assert.ok(error, 'the run went on');
  assert.match(error!.message, new RegExp(`^\\d+ of ${most.train} images could not be read \\(skipped\\): image .*: cannot decode it.*: more than 50 % of the (\\d+) images tried are unreadable; check the image files`));
  const tried = Number(/of the (\d+) images tried/.exec(error!.message)![1]);
  assert.is(tried, most.train, 'fewer than 64 images: the rule waits for all of them');
});

test('a batch left with one readable image is dropped and training goes on into the next epoch', async () => {
  // Break 3 of the 4 images of epoch 0's second batch (seed 0, as pretrain draws it): that batch is
  // dropped, and a run of more steps than the epoch's batches must go on past it.
  const folder = join(dir, 'dropped');
  cpSync(join(dir, 'clean'), folder, { recursive: true });
  const train = data.loadEmbed(join(folder, 'metadata.csv'), join(folder, 'clinical.csv'), folder, 0).images.filter((i) => i.split === 'train');
  const loader = new data.Loader(train, null, { size: 32, batch: 4, seed: 0, train: true, workers: 1 });
  const batches: number[][] = [];
  try {
    for await (const b of loader.epoch(0)) batches.push([...b.index]);
  } finally {
    await loader.close();
  }
  for (const i of batches[1].slice(0, 3)) writeFileSync(train[i].path, 'not a png');
  const steps = batches.length + 2, out = join(dir, 'run-dropped');
  const r = await mama.pretrain(Object.assign(config(folder, out), { steps, checkpointEvery: steps }), { evaluate: false, log: () => {} });
  assert.is(r.steps, steps);
  const state = JSON.parse(io.readSafetensors(join(out, 'checkpoint', 'state.safetensors')).metadata.state!);
  // Epoch 0 gave batches.length − 1 steps, epoch 1 (another order: the 3 broken images in 3
  // batches, each one short, none dropped) its first 3 batches.
  assert.equal([state.epoch, state.sample], [1, 3 * 4]);
});

test.run();
