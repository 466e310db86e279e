// tokenizer.test.ts: the caption tokenizer: the shipped CPU vocabulary loads from its
// tokenizer.json through @huggingface/tokenizers; separators at every "." and ";" and their
// positions; start, end and right padding; decode round trip; a trained vocabulary is
// deterministic; bad files are named.
import { suite } from '../helpers/suite.js';
import { assertIdentical } from '../helpers/index.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data } from 'mamakit';

const test = suite('tokenizer');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-tok-'));
const f: data.StudyFields = { procedure: 'MG Screening Bilateral', reason: 'screening', race: 'Asian', ethnicity: 'Non-Hispanic or Latino', age: '63',
  imageType: '2D', side: 'right', view: 'MLO', density: 4, birads: 5, massShape: 'spiculated', massDensity: 'high density', calcType: 'pleomorphic', calcDistribution: 'clustered' };

test('the shipped vocabulary encodes a caption: sentences, separators, padding, round trip', () => {
  const tok = data.CaptionTokenizer.fromFile('assets/tokenizer-tiny.json');
  const c = data.caption(f);
  const e = tok.encode(c, 144);
  const breaks = (c.match(/[.;]/g) ?? []).length;
  assert.is(e.sentences.length, breaks);
  assert.is(e.ids.length, 144);
  assert.is(e.ids[0], tok.special['<|start|>']);
  for (const p of e.sentences) assert.is(e.ids[p], tok.special['<|sep|>']);
  assert.ok(e.ids.slice(e.length).every((x) => x === tok.special['<|pad|>']));
  assert.ok(e.length < 144, `${e.length} tokens`);
  const text = tok.decode(e.ids.slice(1, e.length - 1)).replaceAll('<|sep|>', '|');
  assert.is(text.replace(/\s+/g, ' ').trim(), c.replace(/[.;]/g, '|').replace(/\s+/g, ' ').trim());
  // Truncation keeps only the separators that fit.
  const short = tok.encode(c, 20);
  assert.ok(short.length === 20 && short.sentences.every((p) => p < 20));
});

test('training is deterministic and the result loads from a file', () => {
  const corpus = [data.caption(f), data.caption({ ...f, density: 1, birads: 1, massShape: undefined, calcType: undefined })];
  const a = JSON.stringify(data.trainBpe(corpus, 80)), b = JSON.stringify(data.trainBpe(corpus, 80));
  assert.is(a, b);
  writeFileSync(join(dir, 't.json'), a);
  const tok = data.CaptionTokenizer.fromFile(join(dir, 't.json'));
  assert.ok(tok.encode(corpus[0]).length > 10);
});

test('bad tokenizer files are named', () => {
  writeFileSync(join(dir, 'bad.json'), '{"model": ');
  assert.throws(() => data.CaptionTokenizer.fromFile(join(dir, 'bad.json')), /tokenizer .*bad.json: cannot read it as JSON/);
  writeFileSync(join(dir, 'wp.json'), JSON.stringify({ model: { type: 'WordPiece', vocab: {} } }));
  assert.throws(() => data.CaptionTokenizer.fromFile(join(dir, 'wp.json')), /not a BPE tokenizer.json/);
  const noSpecial = data.trainBpe([data.caption(f)], 10) as { added_tokens: unknown[] };
  noSpecial.added_tokens = [];
  writeFileSync(join(dir, 'ns.json'), JSON.stringify(noSpecial));
});

test("a language model's tokenizer.json without MaMA's tokens gets them after its vocabulary", () => {
  const plain = data.trainBpe([data.caption(f)], 10) as { added_tokens: unknown[]; model: { vocab: Record<string, number> } };
  plain.added_tokens = [];
  for (const t of data.SPECIAL_TOKENS) delete plain.model.vocab[t];
  const V = Math.max(...Object.values(plain.model.vocab)) + 1;
  writeFileSync(join(dir, 'ns.json'), JSON.stringify(plain));
  const tok = data.CaptionTokenizer.fromFile(join(dir, 'ns.json'));
  assert.equal(data.SPECIAL_TOKENS.map((t) => tok.special[t]), [V, V + 1, V + 2, V + 3, V + 4, V + 5]);
  assert.is(tok.vocabSize, V + 6);
  const e = tok.encode('Reason: screening. Done;', 32);
  assert.is(e.ids[0], V);
  assert.equal(Array.from(e.sentences).map((p) => e.ids[p]), [V + 3, V + 3]);
  assert.ok(tok.encodeText('<|mask|> x').includes(V + 2), 'an added token is matched whole');
});

test('vocab.json + merges.txt load to the same tokenizer as its tokenizer.json', () => {
  const json = JSON.parse(readFileSync('assets/tokenizer-tiny.json', 'utf8'));
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(json.model.vocab));
  writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\n' + json.model.merges.join('\n') + '\n');
  const a = data.CaptionTokenizer.fromFile('assets/tokenizer-tiny.json'), b = data.CaptionTokenizer.fromVocabMerges(join(dir, 'vocab.json'), join(dir, 'merges.txt'));
  const c = data.caption(f);
  assertIdentical(b.encode(c).ids, a.encode(c).ids);
  writeFileSync(join(dir, 'bad-merges.txt'), 'a b c\n');
  assert.throws(() => data.CaptionTokenizer.fromVocabMerges(join(dir, 'vocab.json'), join(dir, 'bad-merges.txt')), /bad-merges.txt: the merge "a b c" is not two tokens/);
});

test.run();
