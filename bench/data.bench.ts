// data.bench.ts: throughput of the synthetic study generator and of the training loader
// (decode, Otsu crop, augment and resize in worker threads, two views per sample, captions and
// tokens) at the CPU preset's 224 px, against the rate a training step consumes (8 samples per
// step of the small ViT). No peer: these are the figures issue 8 asks to record.
// Run: npm run bench -- data
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data } from 'mamakit';
import { Recorder } from './harness.js';

const rec = new Recorder(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'mamakit-bench-data-'));
const studies = 250;
const g = await data.generateStudies({ out: dir, studies, size: 224, seed: 0 });
rec.add(`generator: ${studies} studies × 4 images, 224 px`, 'images/s', 0, { seconds: g.seconds / g.images, rme: 0 });
console.log(`  generator: ${(g.images / g.seconds).toFixed(0)} images/s (1000 studies ≈ ${((4000 * g.seconds) / g.images).toFixed(0)} s)`);

const { images } = data.loadEmbed(join(dir, 'metadata.csv'), join(dir, 'clinical.csv'), dir, 0);
const tok = data.CaptionTokenizer.fromFile('assets/tokenizer-tiny.json');
for (const workers of [1, 2]) {
  const loader = new data.Loader(images, tok, { size: 224, batch: 8, seed: 0, train: true, workers });
  // Epoch 0 decodes every image; from epoch 1 on the workers' caches hold them.
  for (const [epoch, what] of [[0, 'first epoch (decoding)'], [1, 'later epochs (decoded images cached)']] as const) {
    let n = 0;
    const t0 = performance.now();
    for await (const b of loader.epoch(epoch)) n += b.lens.length;
    const s = (performance.now() - t0) / 1000;
    rec.add(`loader, training (2 views), ${workers} worker(s), ${what}`, 'samples/s', 0, { seconds: s / n, rme: 0 });
    console.log(`  loader with ${workers} worker(s), ${what}: ${(n / s).toFixed(0)} samples/s = ${((8 * s) / n * 1000).toFixed(0)} ms per batch of 8`);
  }
  await loader.close();
}
rec.save();
