// pretrain.test.ts: the pre-training loop end to end on a few synthetic studies: the run folder
// (checkpoint, config, metrics with validation points, report, plots), evaluation figures in
// range, `mamakit eval` on the saved checkpoint reproducing them exactly, gradient accumulation,
// and --resume from a mid-run checkpoint ending bit-identical to an uninterrupted run.
import { suite } from '../helpers/suite.js';
import { assertIdentical } from '../helpers/index.js';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { autograd, data, io, mama, nn } from 'mamakit';

const test = suite('pretrain');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-pretrain-'));

function config(out: string, steps: number): mama.TrainConfig {
  const c = mama.defaultConfig('tiny');
  c.model = {
    vit: { imageSize: 32, patch: 8, channels: 1, width: 32, depth: 1, heads: 2, mlpRatio: 2, registers: 2, layerScale: 0.1, eps: 1e-6 },
    text: { vocab: 788, positions: 144, width: 32, depth: 1, heads: 2, eps: 1e-5, scaleByLayer: true },
    embed: 16, localHidden: 32, simclrOut: 16, maxTokens: 144, maxSentences: 12,
  };
  Object.assign(c, { data: join(dir, 'data'), synthStudies: 16, out, steps, batch: 8, warmup: 2, lateStep: 2, checkpointEvery: 2, evalEvery: 2, probeSteps: 40, workers: 1 });
  return c;
}

// Metrics written again in float64, apart from the library's: balanced accuracy (mean recall over
// the classes present) and macro one-vs-rest AUC over every positive/negative pair (ties ½),
// over the classes that have both.
function bacc(y: number[], p: number[]): number {
  const rec = [...new Set(y)].map((c) => y.filter((v, i) => v === c && p[i] === c).length / y.filter((v) => v === c).length);
  return rec.reduce((a, b) => a + b, 0) / rec.length;
}
function auc(y: number[], prob: number[][]): number {
  const per: number[] = [];
  for (const c of new Set(y)) {
    const pos = prob.filter((_, i) => y[i] === c).map((r) => r[c]), neg = prob.filter((_, i) => y[i] !== c).map((r) => r[c]);
    if (!neg.length) continue;
    let s = 0;
    for (const a of pos) for (const b of neg) s += a > b ? 1 : a === b ? 0.5 : 0;
    per.push(s / (pos.length * neg.length));
  }
  return per.length ? per.reduce((a, b) => a + b, 0) / per.length : 0; // 0 when one class alone is present, as the library
}

// Is v a balanced accuracy that some predictions could give, with n[c] images of each class present?
function achievableBacc(v: number, n: number[]): boolean {
  let sums = new Set([0]);
  for (const nc of n) {
    const next = new Set<number>();
    for (const s of sums) for (let k = 0; k <= nc; k++) next.add(Math.round((s + k / nc) * 1e9));
    sums = new Set([...next].map((x) => x / 1e9));
  }
  return [...sums].some((s) => Math.abs(s / n.length - v) < 1e-9);
}

// The zero-shot figures of a run are its checkpoint's own predictions on the split's labels
// (recomputed here from the exported pieces), and every probe row's balanced accuracy is one that
// the split's class counts allow.
async function checkFigures(c: mama.TrainConfig, metrics: Record<string, number>, split: 'test' | 'val', pooling: mama.TextPooling = 'mean') {
  const model = new mama.Mama(c.model, c.seed);
  new nn.ParamArena(model);
  nn.loadWeights(model, join(c.out, 'checkpoint/model.safetensors'));
  const set = data.loadEmbed(join(c.data, 'metadata.csv'), join(c.data, 'clinical.csv'), c.data, c.seed).images.filter((i) => i.split === split);
  assert.ok(set.length >= 4, `${set.length} ${split} images`);
  const tok = data.CaptionTokenizer.fromFile(c.tokenizer);
  const loader = new data.Loader(set, tok, { size: c.model.vit.imageSize, batch: 32, seed: 0, train: false, maxTokens: c.model.maxTokens, workers: 1 });
  const f = await mama.imageFeatures(model, loader);
  await loader.close();
  for (const task of ['density', 'birads'] as const) {
    const y = set.map((im) => (task === 'density' ? im.fields.density - 1 : im.fields.birads));
    const z = mama.zeroShot(model, tok, set, f, task, { maxTokens: c.model.maxTokens, pooling });
    assert.equal(z.labels, f.index.map((i) => y[i]), `${task} labels of the ${split} split`);
    assert.ok(Math.abs(metrics[`zeroshot_${task}_bacc`] - bacc(z.labels, z.pred)) < 1e-12, `zeroshot_${task}_bacc ${metrics[`zeroshot_${task}_bacc`]} vs ${bacc(z.labels, z.pred)}`);
    assert.ok(Math.abs(metrics[`zeroshot_${task}_auc`] - auc(z.labels, z.probs)) < 1e-12, `zeroshot_${task}_auc ${metrics[`zeroshot_${task}_auc`]} vs ${auc(z.labels, z.probs)}`);
    const counts = [...new Set(y)].map((c2) => y.filter((v) => v === c2).length);
    for (const row of ['probe1', 'probe10', 'probe100', 'random_probe100'])
      assert.ok(achievableBacc(metrics[`${row}_${task}_bacc`], counts), `${row}_${task}_bacc = ${metrics[`${row}_${task}_bacc`]} is no balanced accuracy of ${JSON.stringify(counts)} images per class`);
  }
}

test('a short run writes the run folder and evaluates; eval on its checkpoint gives the same figures', async () => {
  const out = join(dir, 'a');
  const c = config(out, 4);
  const r = await mama.pretrain(c, { log: () => {} });
  assert.is(r.steps, 4);
  for (const f of ['config.json', 'metrics.jsonl', 'report.md', 'loss.svg', 'metrics.svg', 'eval.json', 'checkpoint/model.safetensors', 'checkpoint/state.safetensors'])
    assert.ok(existsSync(join(out, f)), `missing ${f}`);
  const rows = mama.readMetrics(join(out, 'metrics.jsonl')), steps = rows.filter((l) => l.loss !== undefined);
  assert.equal(steps.map((l) => l.step), [1, 2, 3, 4]);
  assert.ok(steps[3].local !== undefined && steps[0].local === undefined, 'all terms from lateStep on');
  assert.equal(rows.filter((l) => l.val_zeroshot_density_bacc !== undefined).map((l) => l.step), [2, 4], 'a validation point every evalEvery steps');
  const keys = ['zeroshot', 'probe1', 'probe10', 'probe100', 'random_probe100'].flatMap((k) => ['density', 'birads'].flatMap((t) => [`${k}_${t}_bacc`, `${k}_${t}_auc`]));
  assert.equal(Object.keys(r.metrics).sort(), keys.sort());
  await checkFigures(c, r.metrics, 'test');
  assert.ok(readFileSync(join(out, 'report.md'), 'utf8').includes('| random-init encoder, linear probe 100 % |'));
  assert.ok(io.readSafetensors(join(out, 'checkpoint/model.safetensors')).tensors.has('image_encoder.embeddings.cls_token'));
  const again = await mama.runEval(out, { log: () => {} });
  assert.equal(again, r.metrics, 'the checkpoint evaluated again');
  // On the val split, the authors' prompt pooling changes the zero-shot rows only: the probes read images alone.
  const meanVal = await mama.runEval(out, { log: () => {}, split: 'val' });
  const firstPad = await mama.runEval(out, { log: () => {}, pooling: 'first-pad', split: 'val' });
  assert.equal(JSON.parse(readFileSync(join(out, 'eval-val.json'), 'utf8')), { ...firstPad, probe_protocol: 'cached' }, 'eval-val.json holds the last val evaluation and its probe protocol');
  assert.equal(Object.keys(firstPad).sort(), keys.sort());
  for (const k of keys.filter((k) => !k.startsWith('zeroshot'))) assert.is(firstPad[k], meanVal[k], k);
  await checkFigures(c, firstPad, 'val', 'first-pad');
});

test('--resume from a checkpoint ends where an uninterrupted run does (with gradient accumulation)', async () => {
  const whole = join(dir, 'whole'), parts = join(dir, 'parts');
  const acc = (c: mama.TrainConfig) => Object.assign(c, { batch: 4, accum: 2 });
  await mama.pretrain(acc(config(whole, 5)), { log: () => {}, evaluate: false });
  await mama.pretrain(acc(config(parts, 2)), { log: () => {}, evaluate: false });
  await mama.pretrain(acc(config(parts, 5)), { log: () => {}, evaluate: false, resume: true });
  const w = io.readSafetensors(join(whole, 'checkpoint/state.safetensors')).tensors, p = io.readSafetensors(join(parts, 'checkpoint/state.safetensors')).tensors;
  for (const k of ['values', 'adam_m', 'adam_v']) assertIdentical(p.get(k)!.data, w.get(k)!.data, k);
  const steps = (d: string) => mama.readMetrics(join(d, 'metrics.jsonl')).filter((l) => l.loss !== undefined).map((l) => l.step);
  assert.equal(steps(parts), [1, 2, 3, 4, 5]);
  assert.equal(steps(whole), [1, 2, 3, 4, 5]);
});

test('Ctrl-C at step 3, then --resume across the epoch\'s end in the middle of step 4: bit-identical to a run without the stop', async () => {
  // 40 training images in micro-batches of 4, 3 per step: steps 1–3 take micro-batches 1–9 of the
  // epoch's 10, step 4 the 10th and the next epoch's first two. The checkpoint holds the position
  // after the last step (epoch 0, sample 36); a stop that came while step 4's first micro-batch
  // loads would train it and end the epoch first, and the checkpoint must still point before it
  // (the saves take the position at the last step's end, stepEnd in pretrain).
  const whole = join(dir, 'whole3'), parts = join(dir, 'parts3');
  const acc = (c: mama.TrainConfig) => Object.assign(c, { batch: 4, accum: 3, checkpointEvery: 100, evalEvery: 0 });
  await mama.pretrain(acc(config(whole, 5)), { log: () => {}, evaluate: false });
  const train = data.loadEmbed(join(dir, 'data', 'metadata.csv'), join(dir, 'data', 'clinical.csv'), join(dir, 'data'), 0).images.filter((i) => i.split === 'train').length;
  assert.is(train, 40, 'the stop lands where the test means it to');
  const stopped = await mama.pretrain(acc(config(parts, 5)), { log: () => {}, evaluate: false, onStep: ({ row }) => row.step === 3 && void process.emit('SIGINT') });
  assert.ok(stopped.interrupted && stopped.steps === 3, JSON.stringify(stopped));
  const state = JSON.parse(io.readSafetensors(join(parts, 'checkpoint/state.safetensors')).metadata.state!);
  assert.equal([state.step, state.epoch, state.sample], [3, 0, 36]);
  await mama.pretrain(acc(config(parts, 5)), { log: () => {}, evaluate: false, resume: true });
  const w = io.readSafetensors(join(whole, 'checkpoint/state.safetensors')).tensors, p = io.readSafetensors(join(parts, 'checkpoint/state.safetensors')).tensors;
  for (const k of ['values', 'adam_m', 'adam_v']) assertIdentical(p.get(k)!.data, w.get(k)!.data, k);
});

test('a diverging step stops the run with a message naming it, keeps the last good checkpoint, and --resume goes on', async () => {
  const out = join(dir, 'diverge'), state = join(out, 'checkpoint/state.safetensors');
  await mama.pretrain(config(out, 2), { log: () => {}, evaluate: false });
  const good = readFileSync(state);
  // lr 500: AdamW moves logit_scale by about lr in one step, far outside the kernels' [-80, 80].
  const huge = Object.assign(config(out, 4), { lr: 500 });
  const failure = async (p: Promise<unknown>) => p.then(() => 'no error', (e: Error) => e.message);
  assert.match(await failure(mama.pretrain(huge, { log: () => {}, evaluate: false, resume: true })),
    /^pretrain: diverged at step 3: logit_scale is -?\d+\.\d{4}, outside the \[-80, 80\] the loss kernels take\. The last good checkpoint \(step 2\) is in .*checkpoint: try a lower --lr \(now 500\) and --resume$/);
  assert.ok(readFileSync(state).equals(good), 'the diverged state was saved');
  assert.match(await failure(mama.pretrain(Object.assign(config(join(dir, 'diverge-new'), 2), { lr: 500 }), { log: () => {}, evaluate: false })), /diverged at step 1: .* No checkpoint was saved yet: try a lower --lr \(now 500\)$/);
  await mama.pretrain(config(out, 4), { log: () => {}, evaluate: false, resume: true });
  assert.equal(mama.readMetrics(join(out, 'metrics.jsonl')).filter((l) => l.loss !== undefined).map((l) => l.step), [1, 2, 3, 4]);
});

test('pre-trained encoders load; with a language model LoRA trains and the base stays; without one LoRA is dropped', async () => {
  const c = config(join(dir, 'lora'), 2);
  c.model = { ...c.model, lora: { rank: 2, alpha: 8, dropout: 0.1 } };
  // Encoders as transformers saves them: a bare DINOv2 (no prefix), GPT2LMHeadModel ("transformer.", the vocabulary without MaMA's 6 tokens).
  const vit = new nn.VisionTransformer(c.model.vit, 7), lm = new nn.Gpt2(c.model.text, { seed: 8 });
  new nn.ParamArena(vit), new nn.ParamArena(lm);
  const imageWeights = join(dir, 'dinov2.safetensors'), textWeights = join(dir, 'lm.safetensors');
  nn.saveWeights(vit, imageWeights);
  const V = c.model.text.vocab - 6, D = c.model.text.width;
  io.writeSafetensors(textWeights, lm.namedParameters().map(([n, p]) => {
    const data = p.value.toArray();
    return ['transformer.' + n, n === 'wte.weight' ? { shape: [V, D], data: data.slice(0, V * D) } : { shape: p.hfShape, data }];
  }));
  const lines: string[] = [];
  await mama.pretrain({ ...c, imageWeights, textWeights }, { log: (l) => lines.push(l), evaluate: false });
  assert.ok(lines.some((l) => l.includes('(frozen; LoRA trains)')), lines.join(''));
  const saved = io.readSafetensors(join(c.out, 'checkpoint/model.safetensors')).tensors;
  const get = (n: string) => Array.from(saved.get(n)!.data);
  assertIdentical(get('text_encoder.h.0.mlp.c_fc.weight'), lm.namedParameters().find(([n]) => n === 'h.0.mlp.c_fc.weight')![1].value.toArray(), 'frozen base unchanged');
  assertIdentical(get('text_encoder.wte.weight').slice(0, V * D), lm.wte.value.toArray().subarray(0, V * D), 'pre-trained vocabulary rows');
  assert.ok(get('text_encoder.h.0.attn.c_attn.lora_B.weight').some((v) => v !== 0), 'LoRA B left zero: it did not train');
  assert.not.equal(get('image_encoder.encoder.layer.0.mlp.fc1.weight'), Array.from(vit.namedParameters().find(([n]) => n === 'encoder.layer.0.mlp.fc1.weight')![1].value.toArray()), 'the image encoder trains');
  assertIdentical(get('image_encoder.layernorm.weight'), vit.norm.weight.value.toArray(), 'the final LayerNorm is frozen');
  // No language model: LoRA is dropped from the run's config and the text encoder trains fully.
  lines.length = 0;
  const out = join(dir, 'nolm');
  await mama.pretrain({ ...c, out }, { log: (l) => lines.push(l), evaluate: false });
  assert.ok(lines.some((l) => l.startsWith('no textWeights')));
  assert.is(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).model.lora, undefined);
  assert.not.ok(io.readSafetensors(join(out, 'checkpoint/model.safetensors')).tensors.has('text_encoder.h.0.attn.c_attn.lora_A.weight'));
});

test('gradient accumulation: one row per optimizer step, the micro-batch mean; a bad accum is named', async () => {
  const out = join(dir, 'acc');
  const c = Object.assign(config(out, 2), { batch: 4, accum: 2, lateStep: 0, evalEvery: 0 });
  await mama.pretrain(c, { log: () => {}, evaluate: false });
  const rows = mama.readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(rows.map((r) => r.step), [1, 2]);
  // Step 1 again, outside the loop: the same initial model on the loader's first two micro-batches
  // (each with its own dropout seed, as the loop gives them); its row is their mean, term by term.
  const model = new mama.Mama(c.model, c.seed);
  new nn.ParamArena(model);
  const train = data.loadEmbed(join(c.data, 'metadata.csv'), join(c.data, 'clinical.csv'), c.data, c.seed).images.filter((i) => i.split === 'train');
  const loader = new data.Loader(train, data.CaptionTokenizer.fromFile(c.tokenizer), { size: c.model.vit.imageSize, batch: c.batch, seed: c.seed, train: true, maxTokens: c.model.maxTokens, workers: 1, jitter: c.jitter });
  const micro: Record<string, number>[] = [];
  for await (const batch of loader.epoch(0)) {
    micro.push(autograd.noGrad(() => {
      const r = model.loss(batch, true, micro.length + 1);
      return Object.fromEntries(Object.entries({ loss: r.loss, ...r.parts }).map(([k, v]) => [k, v.value.toArray()[0]]));
    }));
    if (micro.length === 2) break;
  }
  await loader.close();
  for (const k of ['loss', 'clip', 'clip2', 'ntxent', 'local']) {
    const mean = (micro[0][k] + micro[1][k]) / 2;
    assert.ok(Math.abs(rows[0][k] - mean) <= 1e-6 * Math.abs(mean), `step 1 ${k}: logged ${rows[0][k]}, micro-batches ${micro[0][k]} and ${micro[1][k]}`);
  }
  assert.ok(micro[0].loss !== micro[1].loss, 'two different micro-batches');
  try {
    await mama.pretrain(Object.assign(config(out, 1), { accum: 0 }), { log: () => {} });
    assert.unreachable('accum 0 accepted');
  } catch (e) {
    assert.match((e as Error).message, /accum must be an integer ≥ 1, got 0/);
  }
});

test.run();
