// pretrain.test.ts: the pre-training loop end to end on a few synthetic studies: the run folder
// (checkpoint, config, metrics, report, plot), evaluation figures in range, and --resume from a
// mid-run checkpoint ending bit-identical to an uninterrupted run with the same seed.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, mama } from 'mamakit';

const test = suite('pretrain');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-pretrain-'));

function config(out: string, steps: number): mama.TrainConfig {
  const c = mama.defaultConfig('tiny');
  c.model = {
    vit: { imageSize: 32, patch: 8, channels: 1, width: 32, depth: 1, heads: 2, mlpRatio: 2, registers: 2, layerScale: 0.1, eps: 1e-6 },
    text: { vocab: 788, positions: 144, width: 32, depth: 1, heads: 2, eps: 1e-5, scaleByLayer: true },
    embed: 16, localHidden: 32, simclrOut: 16, maxTokens: 144, maxSentences: 12,
  };
  Object.assign(c, { data: join(dir, 'data'), synthStudies: 16, out, steps, batch: 8, warmup: 2, lateStep: 2, checkpointEvery: 2, workers: 1 });
  return c;
}

test('a short run writes the run folder and evaluates', async () => {
  const out = join(dir, 'a');
  const r = await mama.pretrain(config(out, 4), { log: () => {} });
  assert.is(r.steps, 4);
  for (const f of ['config.json', 'metrics.jsonl', 'report.md', 'loss.svg', 'eval.json', 'checkpoint/model.safetensors', 'checkpoint/state.safetensors'])
    assert.ok(existsSync(join(out, f)), `missing ${f}`);
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.is(lines.length, 4);
  assert.ok(lines[3].local !== undefined && lines[0].local === undefined, 'all terms from lateStep on');
  for (const [k, v] of Object.entries(r.metrics)) assert.ok(v >= 0 && v <= 1, `${k} = ${v}`);
  assert.ok(io.readSafetensors(join(out, 'checkpoint/model.safetensors')).tensors.has('image_encoder.embeddings.cls_token'));
});

test('--resume from a checkpoint ends where an uninterrupted run does', async () => {
  const whole = join(dir, 'whole'), parts = join(dir, 'parts');
  await mama.pretrain(config(whole, 5), { log: () => {}, evaluate: false });
  await mama.pretrain(config(parts, 2), { log: () => {}, evaluate: false });
  await mama.pretrain(config(parts, 5), { log: () => {}, evaluate: false, resume: true });
  const w = io.readSafetensors(join(whole, 'checkpoint/state.safetensors')).tensors, p = io.readSafetensors(join(parts, 'checkpoint/state.safetensors')).tensors;
  for (const k of ['values', 'adam_m', 'adam_v']) assert.equal(Array.from(p.get(k)!.data), Array.from(w.get(k)!.data), k);
});

test.run();
