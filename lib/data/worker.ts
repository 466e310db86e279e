// worker.ts: a worker thread of the data loader (loader.ts): decodes and augments images off
// the main thread and hands the pixels back without a copy.
import { parentPort } from 'node:worker_threads';
import { loadImage } from './image.js';
import { mulberry } from './rand.js';

interface Job {
  id: number;
  path: string;
  size: number;
  /** augmentation seed, or null for the test transform */
  seed: number | null;
}


parentPort!.on('message', async (job: Job) => {
  try {
    const data = await loadImage(job.path, { size: job.size, rand: job.seed === null ? undefined : mulberry(job.seed) });
    parentPort!.postMessage({ id: job.id, data }, [data.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: (e as Error).message });
  }
});
