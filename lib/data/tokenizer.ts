// tokenizer.ts: captions to token ids (MAMA.md §4). GPT-2 byte-level BPE from a Hugging Face
// tokenizer.json, run by @huggingface/tokenizers; every "." and ";" of a caption becomes the
// separator token, the caption is wrapped in start and end tokens and right-padded, and the
// separator positions (one per sentence) come back with the ids. trainBpe() builds a small
// vocabulary from a corpus (the CPU presets' tokenizer, scripts/train-tokenizer.mjs).
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { readFileSync } from 'node:fs';

/** MaMA's six added tokens, matched whole. */
export const SPECIAL_TOKENS = ['<|start|>', '<|pad|>', '<|mask|>', '<|sep|>', '<|unk|>', '<|key|>'] as const;

export interface EncodedCaption {
  /** [maxLen] token ids, right-padded */
  ids: Int32Array;
  /** real tokens (start … end) */
  length: number;
  /** positions of the separator tokens: the sentence features */
  sentences: Int32Array;
}

export class CaptionTokenizer {
  private readonly hf: HfTokenizer;
  readonly special: Record<(typeof SPECIAL_TOKENS)[number], number>;
  readonly vocabSize: number;

  constructor(json: TokenizerJson) {
    json = withSpecialTokens(json);
    this.hf = new HfTokenizer(json, {});
    const added = new Map((json.added_tokens ?? []).map((t) => [t.content, t.id]));
    this.special = Object.fromEntries(SPECIAL_TOKENS.map((t) => [t, added.get(t)!])) as CaptionTokenizer['special'];
    this.vocabSize = Math.max(...Object.values(json.model.vocab), ...added.values()) + 1;
  }

  static fromFile(path: string): CaptionTokenizer {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new Error(`tokenizer ${path}: cannot read it as JSON (${(e as Error).message})`);
    }
    const j = json as { model?: { type?: string; vocab?: unknown } };
    if (j?.model?.type !== 'BPE' || typeof j.model.vocab !== 'object') throw new Error(`tokenizer ${path}: not a BPE tokenizer.json`);
    return new CaptionTokenizer(json as ConstructorParameters<typeof CaptionTokenizer>[0]);
  }

  /**
   * A GPT-2 tokenizer from vocab.json and merges.txt (the older Hugging Face layout); MaMA's
   * special tokens are appended after the vocabulary.
   */
  static fromVocabMerges(vocabPath: string, mergesPath: string): CaptionTokenizer {
    let vocab: Record<string, number>, merges: string[];
    try {
      vocab = JSON.parse(readFileSync(vocabPath, 'utf8'));
    } catch (e) {
      throw new Error(`tokenizer ${vocabPath}: cannot read it as JSON (${(e as Error).message})`);
    }
    try {
      merges = readFileSync(mergesPath, 'utf8').split('\n').filter((l) => l && !l.startsWith('#version'));
    } catch (e) {
      throw new Error(`tokenizer ${mergesPath}: cannot read it (${(e as Error).message})`);
    }
    if (typeof vocab !== 'object' || vocab === null) throw new Error(`tokenizer ${vocabPath}: not a JSON object of tokens`);
    const bad = merges.find((m) => m.split(' ').length !== 2);
    if (bad !== undefined) throw new Error(`tokenizer ${mergesPath}: the merge ${JSON.stringify(bad)} is not two tokens`);
    return new CaptionTokenizer(tokenizerJson(vocab, merges));
  }

  // Captions repeat their sentences (templates, masked fields, class texts): each sentence's ids
  // are remembered (bounded; cleared when full), which took ~1.5 ms per caption off the loader.
  private readonly memo = new Map<string, number[]>();

  /** Ids of plain text (no added tokens). */
  encodeText(text: string): number[] {
    const hit = this.memo.get(text);
    if (hit) return hit;
    const ids: number[] = this.hf.encode(text, { add_special_tokens: false }).ids;
    if (this.memo.size >= 65536) this.memo.clear();
    this.memo.set(text, ids);
    return ids;
  }

  /** A caption as the model reads it: start, sentences each closed by the separator, end (the pad token), padding. */
  encode(caption: string, maxLen = 144): EncodedCaption {
    const { '<|start|>': start, '<|sep|>': sep, '<|pad|>': pad } = this.special;
    const out: number[] = [start], seps: number[] = [];
    for (const part of caption.split(/([.;])/)) {
      if (part === '.' || part === ';') {
        seps.push(out.length);
        out.push(sep);
      } else if (part.trim()) {
        out.push(...this.encodeText(part));
      }
    }
    // The end token is the pad token: GPT-2 has one of its own (<|endoftext|>), but it is not
    // among MaMA's added tokens and the small BPE vocabularies here do not have it.
    out.push(pad);
    const length = Math.min(out.length, maxLen);
    const ids = new Int32Array(maxLen).fill(pad);
    ids.set(out.slice(0, length));
    return { ids, length, sentences: Int32Array.from(seps.filter((p) => p < length)) };
  }

  decode(ids: ArrayLike<number>): string {
    return this.hf.decode(Array.from(ids), { skip_special_tokens: false });
  }
}

// GPT-2's byte ↔ printable character map.
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) bs.push(b), cs.push(256 + n++);
  const map: string[] = [];
  bs.forEach((b, i) => (map[b] = String.fromCharCode(cs[i])));
  return map;
}

const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * Trains a byte-level BPE vocabulary of `merges` merges on the corpus (deterministic: ties go
 * to the lexicographically first pair) and returns a tokenizer.json object with the six added
 * tokens after it.
 */
export function trainBpe(corpus: string[], merges: number): object {
  const byteMap = bytesToUnicode(), enc = new TextEncoder();
  const words = new Map<string, number>();
  for (const text of corpus)
    for (const piece of text.split(/[.;]/).join(' ').match(GPT2_SPLIT) ?? []) {
      const w = Array.from(enc.encode(piece), (b) => byteMap[b]).join('');
      words.set(w, (words.get(w) ?? 0) + 1);
    }
  const seqs = [...words.entries()].map(([w, c]) => ({ sym: [...w], c }));
  const vocab: Record<string, number> = {};
  [...byteMap].forEach((ch, i) => (vocab[ch] = i));
  const mergeList: string[] = [];
  for (let m = 0; m < merges; m++) {
    const pairs = new Map<string, number>();
    for (const s of seqs) for (let i = 0; i + 1 < s.sym.length; i++) {
      const k = s.sym[i] + ' ' + s.sym[i + 1];
      pairs.set(k, (pairs.get(k) ?? 0) + s.c);
    }
    let best = '', bestC = 0;
    for (const [k, c] of pairs) if (c > bestC || (c === bestC && k < best)) (best = k), (bestC = c);
    if (bestC < 2) break;
    const [a, b] = best.split(' ');
    const ab = a + b;
    for (const s of seqs) {
      const out: string[] = [];
      for (let i = 0; i < s.sym.length; i++)
        if (i + 1 < s.sym.length && s.sym[i] === a && s.sym[i + 1] === b) out.push(ab), i++;
        else out.push(s.sym[i]);
      s.sym = out;
    }
    mergeList.push(best);
    vocab[ab] = Object.keys(vocab).length;
  }
  return tokenizerJson(vocab, mergeList);
}

type TokenizerJson = { model: { vocab: Record<string, number> }; added_tokens?: Array<{ id: number; content: string }> };

/** MaMA's six tokens (MAMA.md §2) that a tokenizer.json lacks, added after its vocabulary. */
function withSpecialTokens<T extends TokenizerJson>(json: T): T {
  const present = new Map((json.added_tokens ?? []).map((t) => [t.content, t.id]));
  let next = Math.max(-1, ...Object.values(json.model.vocab), ...present.values()) + 1;
  const extra = SPECIAL_TOKENS.filter((t) => !present.has(t))
    .map((content) => ({ id: json.model.vocab[content] ?? next++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  return extra.length ? { ...json, added_tokens: [...(json.added_tokens ?? []), ...extra] } : json;
}

/** A byte-level BPE tokenizer.json with MaMA's special tokens after the vocabulary (or in it). */
function tokenizerJson(vocab: Record<string, number>, merges: string[]) {
  return withSpecialTokens({
    version: '1.0', truncation: null, padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges },
  });
}
