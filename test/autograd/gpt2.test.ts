// gpt2.test.ts: the GPT-2 text encoder with LoRA: Hugging Face / PEFT names, parameter counts
// from the config (BioMedLM's 2.62 M LoRA parameters without allocating the model), every
// gradient against central differences, a frozen base that LoRA training leaves untouched,
// padding that cannot leak into real positions, and one batch over-fitted.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { autograd, io, kernels, memoryStats, nn, optim, Tensor } from 'mamakit';
import { assertIdentical, checkParamGrads, Rng } from '../helpers/index.js';

const test = suite('gpt2');
const rng = new Rng(99);
const { Var, backward, noGrad, ops } = autograd;
const tiny: nn.Gpt2Config = { vocab: 50, positions: 16, width: 16, depth: 2, heads: 2, eps: 1e-5, scaleByLayer: true };
const lora: nn.LoraConfig = { rank: 2, alpha: 8, dropout: 0 };

class Probe extends nn.Module {
  readonly lm: nn.Gpt2;
  readonly head: nn.Linear;
  readonly scale: nn.Param;
  constructor(cfg: nn.Gpt2Config, opts: { lora?: nn.LoraConfig; trainBase?: boolean }, E: number) {
    super();
    this.lm = this.child('lm', new nn.Gpt2(cfg, { seed: 5, ...opts }));
    this.head = this.child('head', new nn.Linear(cfg.width, E, new nn.InitRng(4), { std: 0.3 }));
    this.scale = this.param('scale', [1], 2, false);
  }
  loss(ids: Int32Array, B: number, L: number, lens: Int32Array, txt: autograd.Var, dropoutSeed = 0) {
    const h = this.lm.forward(ids, B, L, lens, dropoutSeed);
    return ops.clipLoss(ops.l2Normalize(this.head.forward(ops.meanPool(h))), txt, this.scale);
  }
}

const ids = (n: number, V: number) => Int32Array.from({ length: n }, () => rng.int(0, V - 1));

test('names and shapes are Hugging Face GPT2Model and PEFT LoRA', () => {
  const p = new Map(new nn.Gpt2(tiny, { lora }).namedParameters().map(([n, x]) => [n, x.shape]));
  assert.equal(p.get('wte.weight'), [50, 16]);
  assert.equal(p.get('wpe.weight'), [16, 16]);
  assert.equal(p.get('h.0.attn.c_attn.weight'), [16, 48]); // Conv1D: [in, out]
  assert.equal(p.get('h.1.attn.c_attn.lora_A.weight'), [2, 16]);
  assert.equal(p.get('h.1.attn.c_attn.lora_B.weight'), [48, 2]);
  for (const n of ['h.0.ln_1.bias', 'h.0.attn.c_proj.weight', 'h.1.ln_2.weight', 'h.1.mlp.c_fc.weight', 'h.1.mlp.c_proj.bias', 'ln_f.weight'])
    assert.ok(p.has(n), `missing ${n}`);
});

test('parameter counts from the config: small models as built, BioMedLM without allocating it', () => {
  for (const opts of [{}, { lora }]) {
    const m = new nn.Gpt2(tiny, opts);
    const c = nn.gpt2ParamCount(tiny, (opts as { lora?: nn.LoraConfig }).lora);
    assert.is(m.parameterCount(), c.total);
  }
  const big = nn.gpt2ParamCount(nn.gpt2Presets.biomedlm, { rank: 8, alpha: 32, dropout: 0.1 });
  assert.is(big.lora, 2_621_440); // MAMA.md: 2.62 M trainable parameters
  assert.ok(big.total > 2.5e9 && big.total < 2.8e9, `${big.total}`);
});

test('every gradient matches central differences (base trained, LoRA with B ≠ 0, padded batch; each entry and each tensor)', () => {
  const B = 3, L = 6, E = 4;
  const model = new Probe(tiny, { lora, trainBase: true }, E);
  const arena = new nn.ParamArena(model);
  for (const blk of model.lm.blocks) kernels.copy(Tensor.fromArray(rng.randn(blk.lora!.B.value.size, 0.3), blk.lora!.B.shape), blk.lora!.B.value);
  // GPT-2 starts every matrix at std 0.02: attention is nearly uniform, the query and key
  // gradients sit at f32's difference noise, and the first LayerNorm divides embeddings of that
  // size by their own small spread (far from linear over a step of 1e-3). Embeddings at 0.5 and
  // matrices at 1/√in make every gradient O(1e-2–1) and the loss smooth on that scale.
  // (Conv1D: W [in, out].)
  for (const p of [model.lm.wte, model.lm.wpe]) kernels.copy(Tensor.fromArray(rng.randn(p.value.size, 0.5), p.shape), p.value);
  for (const [name, p] of model.lm.namedParameters())
    if (/(c_attn|c_proj|c_fc)\.weight$/.test(name)) kernels.copy(Tensor.fromArray(rng.randn(p.value.size, 1 / Math.sqrt(p.shape[0])), p.shape), p.value);
  const tok = ids(B * L, tiny.vocab), lens = Int32Array.from([6, 3, 1]);
  const txt = new Var(Tensor.fromArray(rng.unitRows(B, E), [B, E]));
  backward(model.loss(tok, B, L, lens, txt));
  const f = () => noGrad(() => model.loss(tok, B, L, lens, txt).value.toArray()[0]);
  const checked = checkParamGrads(arena.params, f, { rng, atol: 3e-3 });
  assert.ok(checked > 1500, `${checked}`);
});

test('padding never reaches real positions', () => {
  const m = new nn.Gpt2(tiny);
  new nn.ParamArena(m);
  const B = 2, L = 5, lens = Int32Array.from([5, 2]);
  const a = ids(B * L, tiny.vocab), b = a.slice();
  b[7] = (b[7] + 1) % tiny.vocab, b[9] = (b[9] + 3) % tiny.vocab; // padding of the second caption
  const run = (x: Int32Array) => noGrad(() => m.forward(x, B, L, lens).value.toArray());
  const ya = run(a), yb = run(b), D = tiny.width;
  assertIdentical(ya.subarray(0, (L + 2) * D), yb.subarray(0, (L + 2) * D));
});

test('with a frozen base, training changes the LoRA weights (and the head) only, and over-fits a batch', () => {
  const B = 6, L = 8, E = 8;
  const model = new Probe(tiny, { lora: { rank: 4, alpha: 16, dropout: 0.1 } }, E);
  const arena = new nn.ParamArena(model);
  const before = new Map(arena.params.map(([n, p]) => [n, p.value.toArray()]));
  const opt = new optim.AdamW(arena, { lr: 1e-2 });
  const tok = ids(B * L, tiny.vocab), lens = Int32Array.from({ length: B }, () => rng.int(3, L));
  const txt = new Var(Tensor.fromArray(rng.unitRows(B, E), [B, E]));
  const losses: number[] = [];
  for (let s = 0; s < 40; s++) {
    arena.zeroGrad();
    const loss = model.loss(tok, B, L, lens, txt);
    losses.push(loss.value.toArray()[0]);
    backward(loss);
    opt.update();
  }
  for (const [n, p] of arena.params) {
    const changed = p.value.toArray().some((v, i) => v !== before.get(n)![i]);
    const trainable = n.includes('lora_') || n.startsWith('head') || n === 'scale';
    assert.is(changed, trainable, `${n}: changed ${changed}`);
  }
  assert.ok(losses[39] < 0.5 * losses[0], `loss ${losses[0].toFixed(3)} → ${losses[39].toFixed(3)}`);
});

test('checkpointed blocks give bit-identical gradients (LoRA and GPT-2 dropout, padding; frozen or trained base) with a lower peak of tensor memory', () => {
  const B = 4, L = 12, E = 8, cfg = { ...tiny, width: 32, depth: 4, embdPdrop: 0.1, attnPdrop: 0.1, residPdrop: 0.1 };
  const tok = ids(B * L, cfg.vocab), lens = Int32Array.from([12, 7, 3, 1]), txtHost = rng.unitRows(B, E);
  for (const trainBase of [false, true]) {
    const run = (ckpt: boolean, seed: number) => {
      const model = new Probe(cfg, { lora: { rank: 4, alpha: 16, dropout: 0.25 }, trainBase }, E);
      model.lm.checkpointBlocks = ckpt;
      const arena = new nn.ParamArena(model);
      // B ≠ 0, so that the adapter (and its dropout) reaches the output and A gets a gradient.
      const r = new Rng(3);
      for (const blk of model.lm.blocks) kernels.copy(Tensor.fromArray(r.randn(blk.lora!.B.value.size, 0.3), blk.lora!.B.shape), blk.lora!.B.value);
      const txt = new Var(Tensor.fromArray(txtHost, [B, E]));
      memoryStats(true);
      const base = memoryStats().liveBytes;
      backward(model.loss(tok, B, L, lens, txt, seed));
      return { grads: arena.grads.toArray(), peak: memoryStats().peakBytes - base };
    };
    const plain = run(false, 7), ckpt = run(true, 7);
    assertIdentical(ckpt.grads, plain.grads, `trainBase ${trainBase}: gradients with checkpointed blocks`);
    // The masks matter: another dropout seed changes the LoRA gradients, and so does the attention's
    // dropout alone (recomputed blocks redraw its mask: the gradients above are bit-identical).
    assert.ok(run(false, 8).grads.some((v, i) => v !== plain.grads[i]), 'dropout seed has no effect');
    const noAttn = new Probe({ ...cfg, attnPdrop: 0 }, { lora: { rank: 4, alpha: 16, dropout: 0.25 }, trainBase }, E);
    noAttn.lm.checkpointBlocks = true;
    const arena = new nn.ParamArena(noAttn), r = new Rng(3);
    for (const blk of noAttn.lm.blocks) kernels.copy(Tensor.fromArray(r.randn(blk.lora!.B.value.size, 0.3), blk.lora!.B.shape), blk.lora!.B.value);
    backward(noAttn.loss(tok, B, L, lens, new Var(Tensor.fromArray(txtHost, [B, E])), 7));
    assert.ok(arena.grads.toArray().some((v, i) => v !== plain.grads[i]), 'attention dropout has no effect');
    assert.ok(ckpt.peak < 0.6 * plain.peak, `trainBase ${trainBase}: peak ${ckpt.peak} vs ${plain.peak} bytes`);
    console.log(`  trainBase ${trainBase}: peak tensor memory of forward + backward ${(plain.peak / 2 ** 10).toFixed(0)} KiB, checkpointed ${(ckpt.peak / 2 ** 10).toFixed(0)} KiB`);
  }
});

test('dropoutRow: a batch cut in two, each part at its first row, draws the whole batch\'s masks (every site: embedding, LoRA, residual, attention)', () => {
  // Data-parallel ranks each run a part of one batch: the parts' hidden states are the whole
  // batch's rows, and their gradients sum to the whole batch's (the loss is a sum over rows).
  const B = 4, L = 6, cfg = { ...tiny, embdPdrop: 0.2, attnPdrop: 0.3, residPdrop: 0.2 };
  const tok = ids(B * L, cfg.vocab), lens = Int32Array.from([6, 4, 2, 5]), w = rng.randn(B * L * cfg.width);
  const model = new nn.Gpt2(cfg, { seed: 5, lora: { rank: 2, alpha: 8, dropout: 0.25 }, trainBase: true });
  const arena = new nn.ParamArena(model), r = new Rng(3);
  for (const blk of model.blocks) kernels.copy(Tensor.fromArray(r.randn(blk.lora!.B.value.size, 0.3), blk.lora!.B.shape), blk.lora!.B.value);
  const run = (b0: number, n: number, row: number) => {
    arena.zeroGrad();
    const h = model.forward(tok.subarray(b0 * L, (b0 + n) * L), n, L, lens.subarray(b0, b0 + n), 11, row);
    backward(h, Tensor.fromArray(w.slice(b0 * L * cfg.width, (b0 + n) * L * cfg.width), [n, L, cfg.width])); // d(Σ w·h)
    return { h: h.value.toArray(), g: arena.grads.toArray() };
  };
  const whole = run(0, B, 0), a = run(0, 2, 0), b = run(2, 2, 2);
  const near = (got: ArrayLike<number>, want: ArrayLike<number>, what: string) => {
    let worst = 0, scale = 0;
    for (let i = 0; i < want.length; i++) (worst = Math.max(worst, Math.abs(got[i] - want[i]))), (scale = Math.max(scale, Math.abs(want[i])));
    assert.ok(worst <= 1e-5 * scale, `${what}: differs by ${worst} (scale ${scale})`);
  };
  near(Float32Array.from([...a.h, ...b.h]), whole.h, 'hidden states of the two parts');
  near(a.g.map((v, i) => v + b.g[i]), whole.g, 'summed gradients of the two parts');
  // Without the row offset the second part draws the first part's masks: another result.
  const wrong = run(2, 2, 0);
  assert.ok(wrong.h.some((v, i) => Math.abs(v - whole.h[2 * L * cfg.width + i]) > 1e-3), 'masks ignore dropoutRow');
});

test('a hand-made file with Hugging Face GPT-2 names loads, and a saved model reloads bit-identically', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mamakit-gpt2-'));
  const a = new nn.Gpt2(tiny, { seed: 1 }), b = new nn.Gpt2(tiny, { seed: 2 });
  new nn.ParamArena(a), new nn.ParamArena(b);
  // As transformers saves GPT2Model: our names, plus buffers we do not use (attn.bias masks).
  const entries: Array<[string, io.StoredTensor]> = a.namedParameters().map(([n, p]) => [n, { shape: p.hfShape, data: p.value.toArray() }]);
  entries.push(['h.0.attn.bias', { shape: [1, 1, 16, 16], data: new Float32Array(256).fill(1) }]);
  const path = join(dir, 'gpt2.safetensors');
  io.writeSafetensors(path, entries);
  nn.loadWeights(b, path);
  const x = ids(2 * 5, tiny.vocab), lens = Int32Array.from([5, 3]);
  const run = (m: nn.Gpt2) => noGrad(() => m.forward(x, 2, 5, lens).value.toArray());
  assertIdentical(run(b), run(a));
  assert.throws(() => nn.loadWeights(new nn.Gpt2({ ...tiny, width: 8 }), path), /h\.0\.ln_1\.weight has shape \[16\], the model needs \[8\]|wte\.weight has shape/);
});

test('a language model checkpoint (transformer. prefix, fewer vocabulary rows) loads under added tokens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mamakit-gpt2-'));
  const a = new nn.Gpt2(tiny, { seed: 1 }), b = new nn.Gpt2(tiny, { seed: 2 });
  new nn.ParamArena(a), new nn.ParamArena(b);
  // As GPT2LMHeadModel saves it: "transformer." before every name, the vocabulary without the 2 added tokens, an LM head.
  const V = tiny.vocab - 2, D = tiny.width;
  const entries: Array<[string, io.StoredTensor]> = a.namedParameters().map(([n, p]) => {
    const data = p.value.toArray();
    return ['transformer.' + n, n === 'wte.weight' ? { shape: [V, D], data: data.slice(0, V * D) } : { shape: p.hfShape, data }];
  });
  entries.push(['lm_head.weight', { shape: [V, D], data: new Float32Array(V * D) }]);
  const path = join(dir, 'lm.safetensors');
  io.writeSafetensors(path, entries);
  assert.throws(() => nn.loadWeights(b, path), /transformer\.wte\.weight has shape \[\d+,16\], the model needs \[\d+,16\]/);
  const before = b.wte.value.toArray();
  nn.loadWeights(b, path, { extraRows: ['wte.weight'] });
  const wa = a.wte.value.toArray(), wb = b.wte.value.toArray();
  assertIdentical(wb.subarray(0, V * D), wa.subarray(0, V * D), 'pre-trained rows copied');
  assertIdentical(wb.subarray(V * D), before.subarray(V * D), 'added rows keep their initialisation');
  assertIdentical(b.wpe.value.toArray(), a.wpe.value.toArray());
  assert.throws(() => nn.loadWeights(b, path, { prefix: '' }), /parameter\(s\) not in the file: wte\.weight/);
});

test("GPT-2's embedding, attention and residual dropout: drawn in training mode (per seed), none in evaluation", () => {
  const B = 3, L = 10, tok = ids(B * L, tiny.vocab), lens = Int32Array.from([10, 6, 2]);
  const hidden = (embdPdrop: number, attnPdrop: number, residPdrop: number, training: boolean, seed: number) => {
    const lm = new nn.Gpt2({ ...tiny, embdPdrop, attnPdrop, residPdrop }, { seed: 5 });
    new nn.ParamArena(lm);
    lm.training = training;
    return noGrad(() => lm.forward(tok, B, L, lens, seed)).value.toArray();
  };
  const plain = hidden(0, 0, 0, true, 1);
  assertIdentical(hidden(0.1, 0.1, 0.1, false, 1), plain, 'evaluation mode');
  for (const [e, a, r] of [[0.1, 0, 0], [0, 0.1, 0], [0, 0, 0.1]]) {
    const x = hidden(e, a, r, true, 1), y = hidden(e, a, r, true, 2);
    assert.ok(x.some((v, i) => v !== plain[i]), `embd ${e}, attn ${a}, resid ${r}: no dropout in training`);
    assert.ok(x.some((v, i) => v !== y[i]), `embd ${e}, attn ${a}, resid ${r}: the seed changes nothing`);
  }
  const { embdPdrop, attnPdrop, residPdrop } = nn.gpt2Presets.biomedlm;
  assert.equal([embdPdrop, attnPdrop, residPdrop], [0.1, 0.1, 0.1]);
});

test("LoRA's A is PEFT's kaiming_uniform_(a = √5): U(-1/√in, 1/√in), B zero", () => {
  const model = new nn.Gpt2({ ...tiny, width: 64 }, { seed: 3, lora: { rank: 8, alpha: 32, dropout: 0 } });
  const bound = 1 / Math.sqrt(64);
  for (const b of model.blocks) {
    const a = b.lora!.A.init, n = a.length;
    const max = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0), mean = a.reduce((s, v) => s + v, 0) / n;
    const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
    assert.ok(max <= bound && max > 0.95 * bound, `max |A| ${max}, bound ${bound}`);
    // A uniform's variance is bound²/3; 1536 draws put the sample within a few % of it.
    assert.ok(Math.abs(variance / (bound * bound / 3) - 1) < 0.12, `variance ${variance} vs ${bound * bound / 3}`);
    assert.ok(b.lora!.B.init.every((v) => v === 0));
  }
});

test.run();
