// predict.ts: a trained run folder put to use (`mamakit predict`, mama.loadRun): the run's model
// and tokenizer read back as `mamakit eval` reads them, images (PNG, JPEG, DICOM) preprocessed
// with evaluation's test transform, and zero-shot density and BI-RADS with evaluation's prompts.
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { noGrad } from '../autograd/tape.js';
import { loadImage } from '../data/image.js';
import type { StudyFields } from '../data/report.js';
import { CaptionTokenizer } from '../data/tokenizer.js';
import type { Device } from '../tensor.js';
import { encodeImageRows, zeroShotProbs, type Task } from './evaluate.js';
import type { Mama } from './model.js';
import { loadRunModel, readRunConfig, usable, type TrainConfig } from './train.js';

/** The class names of each zero-shot task, in the order of the probabilities. */
export const TASK_CLASS_NAMES: Record<Task, readonly string[]> = { density: ['A', 'B', 'C', 'D'], birads: ['0', '1', '2', '3', '4', '5', '6'] };

/** The meta fields a zero-shot prompt starts with (MAMA.md §6); a field not given reads "unknown". */
export type ImageMeta = Partial<Pick<StudyFields, 'procedure' | 'reason' | 'race' | 'ethnicity' | 'age' | 'imageType' | 'side' | 'view'>>;
export const META_KEYS = ['procedure', 'reason', 'race', 'ethnicity', 'age', 'imageType', 'side', 'view'] as const;

/** An image: a file path, or one preprocessed image [S·S] in [-1, 1] as run.readImage returns it. */
export type ImageInput = string | Float32Array;

/** Features of N images: global [N][E] (unit rows, what zero-shot scores) and pooled [N][D] (what the linear probe reads). */
export interface ImageFeatures {
  image: Float32Array[];
  pooled: Float32Array[];
}

export interface Run {
  model: Mama;
  tokenizer: CaptionTokenizer;
  config: TrainConfig;
  /** A file decoded and preprocessed as evaluation does (Otsu crop, resize, [-1, 1]); throws naming the file. */
  readImage(path: string): Promise<Float32Array>;
  encodeImages(images: ImageInput[]): Promise<ImageFeatures>;
  /** Global text features [N][E] (unit rows), pooled as the run's zero-shot prompts. */
  encodeTexts(texts: string[]): Float32Array[];
  /**
   * Per image, the probabilities of the task's classes (TASK_CLASS_NAMES order): softmax over
   * s·⟨v, t⟩ against evaluation's prompts. `meta`: one for all images or one per image.
   */
  zeroShot(images: ImageInput[] | ImageFeatures, o: { task: Task; meta?: ImageMeta | ImageMeta[] }): Promise<number[][]>;
}


// As StudyFields for zeroShotPrompts: the meta given, "unknown" elsewhere (as training's meta
// masking writes it); density and BI-RADS do not enter the prompts' meta segments.
function promptFields(meta: ImageMeta): StudyFields {
  const f = Object.fromEntries(META_KEYS.map((k) => [k, meta[k] ?? 'unknown']));
  return { ...f, density: 1, birads: 0 } as StudyFields;
}

// config.json's tokenizer is a path relative to where pretrain ran; the shipped ones are also
// found from elsewhere, under the package's root (dist/lib/mama/ → three levels up).
const packageRoot = fileURLToPath(new URL('../../..', import.meta.url));
const tokenizerPath = (p: string) => (isAbsolute(p) || existsSync(p) ? p : join(packageRoot, p));

const BATCH = 32; // images per encoder call, as evaluation's loader batches them

/**
 * A run folder that `mamakit pretrain` wrote, ready to use: its config.json, its tokenizer and
 * checkpoint/model.safetensors (or `weights`), on `device` (on CUDA in the run's precision).
 */
export function loadRun(dir: string, o: { device?: Device; weights?: string } = {}): Run {
  const device = usable('loadRun', o.device);
  const config = readRunConfig(dir, 'loadRun');
  const model = loadRunModel(config, o.weights ?? join(dir, 'checkpoint', 'model.safetensors'), device, 'loadRun');
  model.training = false; // every submodule: BatchNorm running statistics, no dropout
  const tokenizer = CaptionTokenizer.fromFile(tokenizerPath(config.tokenizer));
  const S = config.model.vit.imageSize, L = config.model.maxTokens;
  const readImage = (path: string) => loadImage(path, { size: S });
  const encodeImages = async (images: ImageInput[]): Promise<ImageFeatures> => {
    const out: ImageFeatures = { image: [], pooled: [] };
    for (let i0 = 0; i0 < images.length; i0 += BATCH) {
      const part = images.slice(i0, i0 + BATCH), px = new Float32Array(part.length * S * S);
      for (const [i, im] of part.entries()) {
        const p = typeof im === 'string' ? await readImage(im) : im;
        if (p.length !== S * S) throw new RangeError(`loadRun: image ${i0 + i} has ${p.length} values, not ${S}·${S}`);
        px.set(p, i * S * S);
      }
      const f = encodeImageRows(model, px);
      out.image.push(...f.image), out.pooled.push(...f.pooled);
    }
    return out;
  };
  const encodeTexts = (texts: string[]): Float32Array[] => {
    const ids = new Int32Array(texts.length * L), lens = new Int32Array(texts.length);
    texts.forEach((s, i) => {
      const e = tokenizer.encode(s, L);
      ids.set(e.ids, i * L), (lens[i] = e.length);
    });
    const t = noGrad(() => model.encodeText(ids, lens, config.pooling).t);
    const v = t.value.toArray(), E = t.shape[1];
    t.dispose();
    return texts.map((_, i) => v.slice(i * E, (i + 1) * E));
  };
  const zeroShot: Run['zeroShot'] = async (images, { task, meta = {} }) => {
    const f = Array.isArray(images) ? await encodeImages(images) : images;
    const metas = Array.isArray(meta) ? meta : f.image.map(() => meta);
    if (metas.length !== f.image.length) throw new RangeError(`loadRun: zeroShot got ${metas.length} meta for ${f.image.length} images`);
    return zeroShotProbs(model, tokenizer, metas.map(promptFields), f.image, task, { maxTokens: L, pooling: config.pooling });
  };
  return { model, tokenizer, config, readImage, encodeImages, encodeTexts, zeroShot };
}
