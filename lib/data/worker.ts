// worker.ts: a worker thread of the data loader (loader.ts): decodes and augments images off
// the main thread and hands the pixels back without a copy.
import { parentPort } from 'node:worker_threads';
import { loadImage } from './image.js';

interface Job {
  id: number;
  path: string;
  size: number;
  /** augmentation seed, or null for the test transform */
  seed: number | null;
}

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    let t = (a = (a + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

parentPort!.on('message', async (job: Job) => {
  try {
    const data = await loadImage(job.path, { size: job.size, rand: job.seed === null ? undefined : mulberry(job.seed) });
    parentPort!.postMessage({ id: job.id, data }, [data.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: (e as Error).message });
  }
});
