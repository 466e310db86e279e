// model.test.ts: MaMA assembled from a synthetic batch: all four losses finite, gradients reach
// every trainable parameter (the local heads only from lateStep on), the loss falls over a few
// AdamW steps on one batch, parameter names keep the Hugging Face encoders' under their prefixes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { autograd, data, mama, nn, optim } from 'mamakit';

const test = suite('mama');
const cfg: mama.MamaConfig = {
  vit: { imageSize: 32, patch: 8, channels: 1, width: 32, depth: 1, heads: 2, mlpRatio: 2, registers: 2, layerScale: 0.1, eps: 1e-6 },
  text: { vocab: 788, positions: 144, width: 32, depth: 1, heads: 2, eps: 1e-5, scaleByLayer: true },
  embed: 16, localHidden: 32, simclrOut: 16, maxTokens: 144, maxSentences: 12,
};

test('a training step through every term; the loss falls on one batch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mamakit-mama-'));
  await data.generateStudies({ out: dir, studies: 3, size: 48, seed: 4 });
  const { images } = data.loadEmbed(join(dir, 'metadata.csv'), join(dir, 'clinical.csv'), dir, 0);
  const tok = data.CaptionTokenizer.fromFile('assets/tokenizer-tiny.json');
  const loader = new data.Loader(images, tok, { size: 32, batch: 8, seed: 0, train: true, workers: 1 });
  const it = loader.epoch(0);
  const batch = (await it.next()).value as data.Batch;
  await loader.close();
  const model = new mama.Mama(cfg, 0);
  const arena = new nn.ParamArena(model);
  assert.ok(arena.params.some(([n]) => n === 'image_encoder.encoder.layer.0.attention.attention.query.weight'));
  assert.ok(arena.params.some(([n]) => n === 'text_encoder.h.0.attn.c_attn.weight'));
  // Early: only the image-text term; the local heads get nothing.
  const early = model.loss(batch, false);
  assert.equal(Object.keys(early.parts), ['clip']);
  autograd.backward(early.loss);
  early.inputs.forEach((t) => t.dispose());
  const headGrad = (prefix: string) => arena.params.filter(([n, p]) => n.startsWith(prefix) && p.grad).some(([, p]) => p.grad!.toArray().some((v) => v !== 0));
  assert.ok(!headGrad('local_image_head') && !headGrad('simclr_head'));
  arena.zeroGrad();
  const opt = new optim.AdamW(arena, { lr: 3e-3 });
  const losses: number[] = [];
  for (let step = 0; step < 12; step++) {
    arena.zeroGrad();
    const r = model.loss(batch, true);
    const parts = Object.fromEntries(Object.entries(r.parts).map(([k, v]) => [k, v.value.toArray()[0]]));
    for (const [k, v] of Object.entries(parts)) assert.ok(Number.isFinite(v), `${k} = ${v}`);
    losses.push(r.loss.value.toArray()[0]);
    autograd.backward(r.loss);
    r.inputs.forEach((t) => t.dispose());
    if (step === 0) for (const h of ['local_image_head', 'local_text_head', 'simclr_head', 'image_encoder', 'text_encoder', 'logit_scale', 'local_scale'])
      assert.ok(headGrad(h), `no gradient reached ${h}`);
    opt.update();
  }
  assert.ok(losses[11] < losses[0], `loss ${losses[0].toFixed(3)} → ${losses[11].toFixed(3)}`);
});

test.run();
