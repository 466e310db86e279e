// worker.ts: a worker thread of the data loader (loader.ts): decodes images (once: decoded
// pixels are cached up to a byte budget, oldest first out), transforms each sample and hands
// the pixels back without a copy.
import { parentPort, workerData } from 'node:worker_threads';
import { decodeImage, transformImage, type DecodedImage } from './image.js';
import { mulberry } from './rand.js';

interface Job {
  id: number;
  path: string;
  size: number;
  /** augmentation seed, or null for the test transform */
  seed: number | null;
}

const opts = (workerData ?? {}) as { cacheBytes?: number; jitter?: number };
const budget = opts.cacheBytes ?? 256 * 2 ** 20;
// Insertion-ordered: the first key is the oldest. Promises, so that concurrent jobs for one path decode it once.
const cache = new Map<string, Promise<DecodedImage>>();
const sizes = new Map<string, number>();
let used = 0;

function decoded(path: string): Promise<DecodedImage> {
  const hit = cache.get(path);
  if (hit) return hit;
  const p = decodeImage(path);
  if (budget <= 0) return p;
  cache.set(path, p);
  p.then(
    (d) => {
      if (!cache.has(path)) return;
      sizes.set(path, d.px.byteLength), (used += d.px.byteLength);
      for (const [k] of cache) {
        if (used <= budget) break;
        cache.delete(k), (used -= sizes.get(k) ?? 0), sizes.delete(k);
      }
    },
    () => cache.delete(path), // an unreadable file is tried again (and reported again) next time
  );
  return p;
}

parentPort!.on('message', async (job: Job) => {
  try {
    const data = transformImage(await decoded(job.path), { size: job.size, rand: job.seed === null ? undefined : mulberry(job.seed), jitter: opts.jitter });
    parentPort!.postMessage({ id: job.id, data }, [data.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: (e as Error).message });
  }
});
