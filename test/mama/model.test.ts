// model.test.ts: MaMA assembled from a synthetic batch: all four losses finite, gradients reach
// every trainable parameter (the local heads only from lateStep on), the loss falls over a few
// AdamW steps on one batch, parameter names keep the Hugging Face encoders' under their prefixes.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { autograd, data, kernels, mama, nn, optim, Tensor } from 'mamakit';
import { assertIdentical, Rng } from '../helpers/index.js';

const test = suite('mama');
const cfg: mama.MamaConfig = {
  vit: { imageSize: 32, patch: 8, channels: 1, width: 32, depth: 1, heads: 2, mlpRatio: 2, registers: 2, layerScale: 0.1, eps: 1e-6 },
  text: { vocab: 788, positions: 144, width: 32, depth: 1, heads: 2, eps: 1e-5, scaleByLayer: true },
  embed: 16, localHidden: 32, simclrOut: 16, maxTokens: 144, maxSentences: 12,
};

async function firstBatch(): Promise<data.Batch> {
  const dir = mkdtempSync(join(tmpdir(), 'mamakit-mama-'));
  await data.generateStudies({ out: dir, studies: 3, size: 48, seed: 4 });
  const { images } = data.loadEmbed(join(dir, 'metadata.csv'), join(dir, 'clinical.csv'), dir, 0);
  const tok = data.CaptionTokenizer.fromFile('assets/tokenizer-tiny.json');
  const loader = new data.Loader(images, tok, { size: 32, batch: 8, seed: 0, train: true, workers: 1 });
  const it = loader.epoch(0);
  const batch = (await it.next()).value as data.Batch;
  await loader.close();
  return batch;
}

test('a training step through every term; the loss falls on one batch', async () => {
  const batch = await firstBatch();
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

test('accumulating two micro-batches with seed ½ gives the mean of their gradients', async () => {
  const batch = await firstBatch();
  const S = cfg.vit.imageSize ** 2, L = batch.ids.length / batch.lens.length;
  const half = (k: number): mama.MamaBatch => ({
    images: batch.images.slice(k * 4 * S, (k + 1) * 4 * S), views: batch.views!.slice(k * 4 * S, (k + 1) * 4 * S),
    ids: batch.ids.slice(k * 4 * L, (k + 1) * 4 * L), lens: batch.lens.slice(k * 4, k * 4 + 4), sentences: batch.sentences.slice(k * 4, k * 4 + 4),
  });
  const model = new mama.Mama(cfg, 0);
  const arena = new nn.ParamArena(model);
  const run = (parts: number[], seed?: number) => {
    arena.zeroGrad();
    for (const k of parts) {
      const r = model.loss(half(k), true, k + 1);
      autograd.backward(r.loss, seed === undefined ? undefined : Tensor.full([1], seed));
      r.inputs.forEach((t) => t.dispose());
    }
    return new Map(arena.params.filter(([, p]) => p.grad).map(([n, p]) => [n, p.grad!.toArray()]));
  };
  const a = run([0]), b = run([1]), acc = run([0, 1], 0.5);
  let checked = 0;
  for (const [n, g] of acc) {
    const ga = a.get(n), gb = b.get(n);
    g.forEach((v, i) => {
      const want = 0.5 * ((ga?.[i] ?? 0) + (gb?.[i] ?? 0));
      assert.ok(Math.abs(v - want) <= 1e-5 * (1 + Math.abs(want)), `${n}[${i}]: ${v} vs ${want}`);
    });
    checked += g.length;
  }
  assert.ok(checked > 10000, `${checked} gradient values compared`);
});

test('checkpointing both encoders gives bit-identical gradients (LoRA and GPT-2 dropout, all four terms)', async () => {
  const batch = await firstBatch();
  const lcfg: mama.MamaConfig = { ...cfg, vit: { ...cfg.vit, depth: 2 }, text: { ...cfg.text, depth: 2, embdPdrop: 0.1, attnPdrop: 0.1, residPdrop: 0.1 }, lora: { rank: 2, alpha: 8, dropout: 0.2 } };
  const run = (checkpoint: boolean) => {
    const model = new mama.Mama({ ...lcfg, checkpoint }, 0);
    assert.is(model.image.checkpointBlocks && model.text.checkpointBlocks, checkpoint);
    const arena = new nn.ParamArena(model);
    const r = new Rng(8);
    for (const b of model.text.blocks) kernels.copy(Tensor.fromArray(r.randn(b.lora!.B.value.size, 0.3), b.lora!.B.shape), b.lora!.B.value);
    const l = model.loss(batch, true, 5);
    autograd.backward(l.loss);
    l.inputs.forEach((t) => t.dispose());
    return arena.grads.toArray();
  };
  const plain = run(false);
  assert.ok(plain.some((v) => v !== 0));
  assertIdentical(run(true), plain, 'gradients with checkpointed encoders');
  assert.is(mama.mamaPresets.base.checkpoint, true);
  assert.is(mama.mamaPresets.tiny.checkpoint, false);
});

test('the sentence head sees real sentences only: more padding rows change nothing', async () => {
  const batch = await firstBatch();
  // Captions with different sentence counts (3..10 of their separators).
  const b2 = { ...batch, sentences: batch.sentences.map((p, i) => p.slice(0, 3 + i)) };
  const local = (maxSentences: number) => {
    const model = new mama.Mama({ ...cfg, maxSentences }, 0);
    new nn.ParamArena(model);
    const r = model.loss(b2, true);
    const v = r.parts.local.value.toArray()[0];
    r.inputs.forEach((t) => t.dispose());
    return v;
  };
  const a = local(12), b = local(24);
  assert.ok(Number.isFinite(a));
  assert.is(a, b, `local loss ${a} with 12 sentence rows, ${b} with 24`);
});

test('the sentence head runs once per caption: features and running statistics as a loop over the captions', () => {
  const B = 4, L = 20, Dt = cfg.text.width, S = cfg.maxSentences, E = cfg.embed;
  const hidden = new autograd.Var(Tensor.fromArray(new Rng(5).randn(B * L * Dt), [B, L, Dt]));
  const sentences = [[2, 5, 9], [1, 3, 4, 7, 11, 15], [0, 19], [4, 8, 12, 16]].map((a) => Int32Array.from(a));
  const model = new mama.Mama(cfg, 0), ref = new mama.Mama(cfg, 0);
  new nn.ParamArena(model), new nn.ParamArena(ref);
  const got = autograd.noGrad(() => model.sentenceFeatures(hidden, sentences).sent).value.toArray();
  sentences.forEach((pos, b) => {
    const want = autograd.noGrad(() => ref.sentenceHead.forward(autograd.ops.gatherRows(hidden, Int32Array.from(pos, (p) => b * L + p)))).value.toArray();
    assertIdentical(got.subarray(b * S * E, (b * S + pos.length) * E), want, `caption ${b}`);
  });
  for (const bn of ['bn1', 'bn2'] as const)
    for (const stat of ['runningMean', 'runningVar'] as const)
      assertIdentical(model.sentenceHead[bn][stat].value.toArray(), ref.sentenceHead[bn][stat].value.toArray(), `${bn} ${stat}`);
  assert.throws(() => model.sentenceFeatures(hidden, [Int32Array.of(3), ...sentences.slice(1)]), /caption 0 has 1 sentence\(s\); BatchNorm per caption needs 2/);
});

test("first-pad pooling takes the hidden state at each prompt's first padding position", () => {
  const model = new mama.Mama(cfg, 0);
  new nn.ParamArena(model);
  const L = 144, lens = Int32Array.of(5, 144, 40), ids = Int32Array.from({ length: 3 * L }, (_, i) => (i * 7) % 700);
  const t = autograd.noGrad(() => model.encodeText(ids, lens, 'first-pad').t).value.toArray();
  const h = autograd.noGrad(() => model.text.forward(ids, 3, L, lens)).value.toArray();
  const W = model.textProj.weight.value.toArray(), bias = model.textProj.bias!.value.toArray(), D = cfg.text.width, E = cfg.embed;
  [5, 143, 40].forEach((pos, b) => {
    const row = Array.from({ length: E }, (_, e) => {
      let s = bias[e];
      for (let d = 0; d < D; d++) s += h[(b * L + pos) * D + d] * W[e * D + d];
      return s;
    });
    const norm = Math.hypot(...row);
    row.forEach((v, e) => assert.ok(Math.abs(v / norm - t[b * E + e]) < 1e-5, `prompt ${b} feature ${e}: ${t[b * E + e]} vs ${v / norm}`));
  });
});

test("zero-shot: softmax over each image's own prompts of exp(logit_scale)·⟨v, t⟩, however prompts are batched", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mamakit-zs-'));
  await data.generateStudies({ out: dir, studies: 2, size: 48, seed: 9 });
  const { images } = data.loadEmbed(join(dir, 'metadata.csv'), join(dir, 'clinical.csv'), dir, 0);
  const tok = data.CaptionTokenizer.fromFile('assets/tokenizer-tiny.json');
  const model = new mama.Mama(cfg, 0);
  new nn.ParamArena(model);
  const loader = new data.Loader(images, tok, { size: 32, batch: 3, seed: 0, train: false, workers: 1 });
  model.training = false;
  const f = await mama.imageFeatures(model, loader);
  await loader.close();
  assert.equal([...f.index].sort(), images.map((_, i) => i), 'every image once');
  assert.is(model.training, false, 'the mode the model was in is kept');
  const scale = Math.exp(model.logitScale.value.toArray()[0]);
  for (const task of ['density', 'birads'] as const) {
    const z = mama.zeroShot(model, tok, images, f, task, { maxTokens: 144, batch: 9 }); // groups of 2 or 1 images
    f.index.forEach((im, i) => {
      const prompts = data.zeroShotPrompts(images[im].fields, task);
      const logits = prompts.map((p) => {
        const e = tok.encode(p, 144);
        const t = autograd.noGrad(() => model.encodeText(e.ids, Int32Array.of(e.length)).t).value.toArray();
        return scale * t.reduce((s, v, k) => s + v * f.image[i][k], 0);
      });
      const m = Math.max(...logits), ex = logits.map((l) => Math.exp(l - m)), sum = ex.reduce((a, b) => a + b, 0);
      ex.forEach((v, c) => assert.ok(Math.abs(z.probs[i][c] - v / sum) < 1e-5, `${task} image ${im} class ${c}: ${z.probs[i][c]} vs ${v / sum}`));
      assert.is(z.labels[i], task === 'density' ? images[im].fields.density - 1 : images[im].fields.birads);
      assert.is(z.pred[i], z.probs[i].indexOf(Math.max(...z.probs[i])));
    });
  }
});


test('evaluation mode is deterministic: the same prompts twice give the features of p = 0; training mode draws dropout', () => {
  const tok = data.CaptionTokenizer.fromFile('assets/tokenizer-tiny.json');
  const prompts = ['Breast composition: The breast is extremely dense.', 'Findings: a benign finding is present.'].map((p) => tok.encode(p, 144));
  const ids = new Int32Array(2 * 144), lens = Int32Array.from(prompts, (e) => e.length);
  prompts.forEach((e, i) => ids.set(e.ids, i * 144));
  const encode = (dropout: number, training: boolean, seed: number) => {
    const model = new mama.Mama({ ...cfg, lora: { rank: 2, alpha: 8, dropout } }, 0);
    new nn.ParamArena(model);
    const r = new Rng(8);
    for (const b of model.text.blocks) kernels.copy(Tensor.fromArray(r.randn(b.lora!.B.value.size, 0.3), b.lora!.B.shape), b.lora!.B.value);
    model.training = training;
    assert.ok(model.text.blocks[0].lora!.training === training && model.sentenceHead.bn1.training === training, 'the mode reaches every submodule');
    return autograd.noGrad(() => model.encodeText(ids, lens, 'mean', seed).t).value.toArray();
  };
  const ref = encode(0, false, 1);
  assertIdentical(encode(0.3, false, 1), ref, 'evaluation with p = 0.3 vs p = 0');
  assertIdentical(encode(0.3, false, 2), ref, 'evaluation, another seed');
  const a = encode(0.3, true, 1), b = encode(0.3, true, 2);
  assert.ok(a.some((v, i) => v !== b[i]), 'training mode: the dropout seed changes nothing');
  assert.ok(a.some((v, i) => v !== ref[i]), 'training mode: no dropout drawn');
});

test.run();
