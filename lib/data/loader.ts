// loader.ts: batches for MaMA (MAMA.md §4): for every image its caption (meta-masked when
// training), its tokens and sentence positions, the image, and a second view — another image
// of the same study with probability 0.5, else a second augmentation of the same image. Images
// are decoded and augmented by a pool of worker threads, a batch ahead of the consumer; an
// image that cannot be read is skipped (its batch is one sample short) and counted; a training
// batch left with a single sample is dropped (sharded, it is kept: the ranks decide together).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { EmbedImage } from './embed.js';
import { caption, maskMeta } from './report.js';
import { mulberry, shuffle } from './rand.js';
import type { CaptionTokenizer } from './tokenizer.js';

export interface LoaderOptions {
  size: number;
  batch: number;
  seed: number;
  /** training: augmentations, meta masking, second views, shuffling */
  train: boolean;
  maxTokens?: number;
  /** worker threads (default: the CPUs less one, at least 1) */
  workers?: number;
  /** decoded images kept in memory, in bytes over all workers (default 512 MiB; 0: none) */
  cacheBytes?: number;
  /** epoch() throws once more than this fraction of the images it tried (at least 64, or all) could not be read (default: never) */
  maxUnreadable?: number;
  /** called for each image found unreadable, with the reason (which names the path) */
  onUnreadable?: (why: string, count: number) => void;
  /** the probability of ColorJitter in training augmentation (default 0.8, the authors') */
  jitter?: number;
  /**
   * data-parallel training: this process is `rank` of `size`. Every rank draws the epoch's same
   * permutation and augmentations, and takes every size-th batch from its rank on, so that the
   * ranks' k-th batches together are the one-process epoch's batches k·size … k·size + size − 1;
   * every rank gets floor(n / (size · batch)) batches (training only). A batch that unreadable
   * images leave with fewer than 2 samples (even none) is yielded all the same, so that every
   * rank gets the same number: whether to use it is for the ranks to agree on
   */
  shard?: { rank: number; size: number };
}

export interface Batch {
  /** [B · size · size] in [-1, 1] */
  images: Float32Array;
  /** second views, same layout (training only) */
  views: Float32Array | null;
  /** [B · maxTokens] */
  ids: Int32Array;
  lens: Int32Array;
  /** separator positions per caption */
  sentences: Int32Array[];
  /** index of each sample in the image list */
  index: Int32Array;
  density: Int32Array;
  birads: Int32Array;
  /**
   * the end of this batch in the epoch's order, counted in samples and past the other ranks'
   * batches beside it (k·size + size batches of B, plus epoch()'s `from`): where a run resumed
   * after this batch continues, on any number of ranks
   */
  end: number;
}


export class ImagePool {
  private readonly workers: Worker[];
  private next = 0;
  private readonly pending = new Map<number, { resolve: (d: Float32Array) => void; reject: (e: Error) => void }>();
  private readonly busy = new Map<Worker, number>();
  /** jitter: ColorJitter's probability in the workers' training transform (default 0.8) */
  constructor(n: number, cacheBytes = 512 * 2 ** 20, jitter?: number) {
    this.workers = Array.from({ length: n }, () => {
      const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: { cacheBytes: Math.floor(cacheBytes / n), jitter } });
      w.on('message', (m: { id: number; data?: Float32Array; error?: string }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error !== undefined) p?.reject(new Error(m.error));
        else p?.resolve(m.data!);
      });
      // Idle workers must not keep the process alive; busy ones must (a pending load).
      w.unref();
      return w;
    });
  }
  load(path: string, size: number, seed: number | null): Promise<Float32Array> {
    const id = this.next++;
    // One worker per path, so that each worker's decode cache holds its own share of the images.
    let h = 2166136261;
    for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 16777619);
    const w = this.workers[(h >>> 0) % this.workers.length];
    const busy = this.busy.get(w) ?? 0;
    if (busy === 0) w.ref();
    this.busy.set(w, busy + 1);
    const settle = () => {
      const left = this.busy.get(w)! - 1;
      this.busy.set(w, left);
      if (left === 0) w.unref();
    };
    return new Promise<Float32Array>((resolve, reject) => {
      this.pending.set(id, { resolve: (d) => (settle(), resolve(d)), reject: (e) => (settle(), reject(e)) });
      w.postMessage({ id, path, size, seed });
    });
  }
  async close(): Promise<void> {
    // ref() first: an unreferenced worker's exit may never be waited for, and the process would
    // end with this promise pending.
    await Promise.all(this.workers.map((w) => (w.ref(), w.terminate())));
  }
}

export class Loader {
  readonly pool: ImagePool;
  /** images that could not be read, by path */
  readonly unreadable = new Map<string, string>();
  /** the images this loader has finished trying to read, readable or not (indices into `images`) */
  private readonly tried = new Set<number>();
  /** the other images of each image's study, as indices into `images` (a split keeps studies whole) */
  private readonly mates: number[][];
  // Holds the event loop open until close(): awaiting a batch must never find it empty (worker
  // replies arrive on their own, unreferenced handles; a test runner saw the process end early).
  private readonly keepAlive = setInterval(() => {}, 1 << 30);
  /** tokenizer null: images only, no captions (ids and lens zero; RSNA has no report) */
  constructor(readonly images: EmbedImage[], readonly tokenizer: CaptionTokenizer | null, readonly o: LoaderOptions) {
    const sh = o.shard, bad = !sh ? null
      : !(Number.isInteger(sh.size) && sh.size >= 1 && Number.isInteger(sh.rank) && sh.rank >= 0 && sh.rank < sh.size) ? `shard must be { rank, size } with integers 0 ≤ rank < size, got ${JSON.stringify(sh)}`
        : sh.size > 1 && !o.train ? 'shard is for training (evaluation runs on one process)' : null;
    if (bad) throw (clearInterval(this.keepAlive), new RangeError(`Loader: ${bad}`));
    this.pool = new ImagePool(o.workers ?? Math.max(1, availableParallelism() - 1), o.cacheBytes, o.jitter);
    const byStudy = new Map<string, number[]>();
    images.forEach((im, i) => (byStudy.get(im.study) ?? byStudy.set(im.study, []).get(im.study)!).push(i));
    this.mates = images.map((im, i) => byStudy.get(im.study)!.filter((j) => j !== i));
  }

  /** Batches per epoch (of this rank when sharded), from sample `from` of the epoch's order on. */
  batchesFrom(from = 0): number {
    const B = this.o.batch, N = this.images.length - from;
    return this.o.train ? Math.floor(N / (B * (this.o.shard?.size ?? 1))) : Math.ceil(N / B);
  }

  get perEpoch(): number {
    return this.batchesFrom(0);
  }

  /**
   * Batches of one epoch (the last partial batch is dropped when training), one prefetched;
   * from: start at that sample of the epoch's order (a Batch's `end`: a resumed run), the samples
   * before it drawing their random numbers unused, so that every later batch is the one the whole
   * epoch has there, whatever the ranks, batch and accumulation before.
   */
  async *epoch(epoch: number, from = 0): AsyncGenerator<Batch> {
    const N = this.images.length;
    if (!(Number.isInteger(from) && from >= 0 && from <= N)) throw new RangeError(`Loader.epoch: from must be an integer sample in [0, ${N}], got ${from}`);
    const rand = mulberry(this.o.seed * 7919 + epoch);
    const order = this.images.map((_, i) => i);
    if (this.o.train) shuffle(order, rand);
    const B = this.o.batch, n = this.batchesFrom(from), { rank, size } = this.o.shard ?? { rank: 0, size: 1 };
    this.draw(order.slice(0, from), rand);
    // The k-th batch of this rank; the other ranks' batches beside it draw their random numbers unused.
    const next = (k: number) => {
      let mine: Promise<Batch | null> | null = null;
      for (let r = 0; r < size; r++) {
        const at = from + (k * size + r) * B, idx = order.slice(at, at + B);
        if (r === rank) mine = this.make(idx, rand, from + (k + 1) * size * B);
        else this.draw(idx, rand);
      }
      return mine!;
    };
    let ahead = n > 0 ? next(0) : null;
    for (let k = 0; k < n; k++) {
      const cur = ahead!;
      ahead = k + 1 < n ? next(k + 1) : null;
      const b = await cur;
      const max = this.o.maxUnreadable, tried = this.tried.size;
      if (max !== undefined && (tried >= 64 || tried === N) && this.unreadable.size > max * tried)
        throw new Error(`${this.unreadableNote()}: more than ${Math.round(100 * max)} % of the ${tried} images tried are unreadable; check the image files under the data folder`);
      if (b) yield b;
    }
  }

  /** "N of M images could not be read (skipped): why; why; why …", '' when all could. */
  unreadableNote(examples = 3): string {
    const n = this.unreadable.size;
    if (!n) return '';
    const first = [...this.unreadable.values()].slice(0, examples).join('; ');
    return `${n} of ${this.images.length} images could not be read (skipped): ${first}${n > examples ? ' …' : ''}`;
  }

  private async one(i: number, seed: number | null): Promise<Float32Array | null> {
    const path = this.images[i].path;
    if (this.unreadable.has(path)) return null;
    try {
      return await this.pool.load(path, this.o.size, seed);
    } catch (e) {
      if (!this.unreadable.has(path)) this.unreadable.set(path, (e as Error).message), this.o.onUnreadable?.((e as Error).message, this.unreadable.size);
      return null;
    } finally {
      this.tried.add(i);
    }
  }

  // The random choices of a batch's samples: second view, augmentation seeds, meta masking.
  private draw(idx: number[], rand: () => number) {
    const train = this.o.train;
    return idx.map((i) => {
      const mates = this.mates[i];
      const mate = train && mates.length && rand() < 0.5 ? mates[Math.floor(rand() * mates.length)] : i;
      const s1 = train ? Math.floor(rand() * 2 ** 31) : null, s2 = Math.floor(rand() * 2 ** 31);
      return { i, mate, s1, s2, fields: train ? maskMeta(this.images[i].fields, rand) : this.images[i].fields };
    });
  }

  private async make(idx: number[], rand: () => number, end: number): Promise<Batch | null> {
    const S = this.o.size, L = this.o.maxTokens ?? 144, train = this.o.train;
    const jobs = this.draw(idx, rand).map(({ i, mate, s1, s2, fields }) => ({ i, fields, first: this.one(i, s1), second: train ? this.one(mate, s2) : Promise.resolve(null) }));
    const done = await Promise.all(jobs.map(async (j) => ({ ...j, a: await j.first, b: await j.second })));
    const ok = done.filter((j) => j.a && (!train || j.b));
    // A training batch needs two samples (the contrastive losses, BatchNorm): one left alone is
    // dropped, unless sharded (the ranks must stay in step: they skip it together).
    if (ok.length < (train ? 2 : 1) && (this.o.shard?.size ?? 1) === 1) return null;
    const n = ok.length;
    const batch: Batch = {
      images: new Float32Array(n * S * S), views: train ? new Float32Array(n * S * S) : null, ids: new Int32Array(n * L), lens: new Int32Array(n),
      sentences: [], index: new Int32Array(n), density: new Int32Array(n), birads: new Int32Array(n), end,
    };
    ok.forEach((j, k) => {
      batch.images.set(j.a!, k * S * S);
      if (batch.views) batch.views.set(j.b!, k * S * S);
      if (this.tokenizer) {
        const e = this.tokenizer.encode(caption(j.fields), L);
        batch.ids.set(e.ids, k * L);
        batch.lens[k] = e.length;
        batch.sentences.push(e.sentences);
      } else batch.sentences.push(new Int32Array(0));
      batch.index[k] = j.i;
      batch.density[k] = this.images[j.i].fields.density;
      batch.birads[k] = this.images[j.i].fields.birads;
    });
    return batch;
  }

  /** Stops the workers; a loader that is not closed keeps the process alive. */
  async close(): Promise<void> {
    await this.pool.close();
    clearInterval(this.keepAlive);
  }
}
