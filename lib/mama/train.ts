// train.ts: MaMA pre-training (MAMA.md §5), the work behind `mamakit pretrain`: synthetic data
// when none is given, the training loop (two views, the loss schedule, gradient accumulation,
// AdamW with warm-up and cosine), a progress line, validation zero-shot points, checkpoints
// (weights, AdamW moments and the loop's position; Ctrl-C saves one), --resume, and the run
// folder (config.json, metrics.jsonl, eval.json, report.md, loss.svg, metrics.svg). runEval()
// is `mamakit eval`: a saved run's checkpoint evaluated again (MAMA.md §6).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backward } from '../autograd/tape.js';
import * as dist from '../dist/index.js';
import { loadEmbed } from '../data/embed.js';
import { Loader } from '../data/loader.js';
import { generateStudies } from '../data/synth.js';
import { CaptionTokenizer } from '../data/tokenizer.js';
import { ParamArena } from '../nn/module.js';
import { AdamW, warmupCosine } from '../optim/adamw.js';
import * as kernels from '../kernels/index.js';
import { backends, cudaStatus, like, Tensor, transferStats, type Device, type TransferStats } from '../tensor.js';
import { loadWeights } from '../nn/weights.js';
import { loadCheckpoint, saveCheckpoint } from '../nn/checkpoint.js';
import { evalLoader, evaluate, type EvalOptions, type ProbeProtocol } from './evaluate.js';
import { Mama, mamaPresets, type MamaConfig, type TextPooling } from './model.js';
import { readMetrics, writePlots, writeReport } from './runfolder.js';

export interface TrainConfig {
  preset: keyof typeof mamaPresets;
  model: MamaConfig;
  data: string;
  /** synthetic studies to generate when `data` has none */
  synthStudies: number;
  tokenizer: string;
  /** pre-trained image encoder weights (safetensors, Hugging Face DINOv2-with-registers names) */
  imageWeights?: string;
  /**
   * pre-trained language model weights (safetensors, Hugging Face GPT-2 names; the tokenizer's
   * added tokens get new rows). Without them a LoRA config is dropped and the text encoder trains fully.
   */
  textWeights?: string;
  out: string;
  /** optimizer steps */
  steps: number;
  /** images per micro-batch (the contrastive negatives) */
  batch: number;
  /** micro-batches per optimizer step (gradient accumulation) */
  accum: number;
  lr: number;
  /** the learning rate the cosine ends at */
  minLr: number;
  warmup: number;
  lateStep: number;
  weightDecay: number;
  /** weight decay on every trainable parameter (the authors' one group: biases, norms, LayerScale, scales) or on matrices only */
  decayAll: boolean;
  /** clip the global gradient norm to this, or null for no clipping (the authors') */
  maxGradNorm: number | null;
  seed: number;
  checkpointEvery: number;
  /** validation zero-shot density every this many steps (0: never) */
  evalEvery: number;
  /** linear-probe SGD steps and peak learning rate (MAMA.md §6: 8000, 5e-4) */
  probeSteps: number;
  probeLr: number;
  /**
   * the linear probe's protocol (MAMA.md §6): 'cached' features (the fast default: probeSteps,
   * probeLr) or 'authors' (augmented images through the frozen encoder every step: authorsProbeSteps
   * SGD steps of headBatch images, authorsProbeLr after headWarmup steps, cosine to 1e-5)
   */
  probeProtocol?: ProbeProtocol;
  authorsProbeSteps?: number;
  authorsProbeLr?: number;
  /** add the full fine-tune rows (MAMA.md §6: every image-encoder weight trains) to the evaluation */
  finetune?: boolean;
  finetuneSteps?: number;
  finetuneLr?: number;
  /** images per step of the authors' probe and the fine-tune (MAMA.md §6: 72) */
  headBatch?: number;
  /** their warm-up steps (MAMA.md §6: 100), or null: 100, or 1/80 of a shorter run (the paper's share of its 8000 steps) */
  headWarmup?: number | null;
  /** text pooling of the zero-shot prompts */
  pooling: TextPooling;
  /**
   * under mpirun, the loss terms over every rank's samples: 'ntxent' (MaMA's, the default):
   * NT-Xent over the gathered batch, CLIP and local alignment over the rank's own; 'all': every
   * term over the gathered batch (open_clip's local-loss form); 'none': every term over the
   * rank's own batch (as one process with gradient accumulation)
   */
  gather?: Gather;
  /**
   * under mpirun, the patch and SimCLR heads' BatchNorm in training over every rank's rows
   * (PyTorch's SyncBatchNorm; default false: each rank's own); no effect on one process
   */
  syncBn?: boolean;
  workers?: number;
  /** where the model trains and evaluates (default 'cpu') */
  device?: Device;
  /**
   * 'bf16' (CUDA only; its default there) is mixed precision: bf16 weights and activations for
   * the matrix work, f32 accumulation in every kernel, f32 master weights, gradients and AdamW
   * moments for the trainable parameters, loss heads and normalisation statistics in f32;
   * 'f32' (the CPU's, and an option on CUDA) computes everything in f32.
   */
  precision?: Precision;
  /**
   * ColorJitter's probability in training augmentation: the authors' 0.8 in base; 0 in tiny,
   * whose synthetic studies encode density as the brightness of the breast's texture, which
   * brightness and contrast jitter scramble (with it the image-text term stays at chance)
   */
  jitter?: number;
}

export type Precision = 'f32' | 'bf16';
export type Gather = 'ntxent' | 'all' | 'none';

/** The precision a run computes in: the one asked for, else bf16 on CUDA and f32 on the CPU. */
export function precisionOf(cfg: Pick<TrainConfig, 'precision' | 'device'>): Precision {
  return cfg.precision ?? (cfg.device === 'cuda' ? 'bf16' : 'f32');
}

/**
 * The tiny preset's settings of the protocols on augmented images: minutes on 2 cores instead of
 * the paper's hours, and a learning rate that trains the head in that many steps (README).
 */
export const TINY_HEADS = { probeSteps: 100, probeLr: 5e-2, finetuneSteps: 40, finetuneLr: 5e-2 };

/** The warm-up of a head trained for `steps`: the one given, else 100 or 1/80 of a shorter run. */
export function headWarmup(cfg: Pick<TrainConfig, 'headWarmup'>, steps: number): number {
  return cfg.headWarmup ?? Math.min(100, Math.ceil(steps / 80));
}

export function defaultConfig(preset: keyof typeof mamaPresets = 'tiny'): TrainConfig {
  const tiny = preset === 'tiny';
  return {
    preset, model: mamaPresets[preset] as MamaConfig, data: 'data/synth', synthStudies: tiny ? 600 : 0, tokenizer: 'assets/tokenizer-tiny.json',
    // base: the paper's 36 per micro-batch and 4 GPUs × accumulation 2 = 288 images per step, here as 8 micro-batches on one device.
    out: 'runs/mama-' + preset, steps: tiny ? 300 : 40000, batch: tiny ? 32 : 36, accum: tiny ? 1 : 8, lr: tiny ? 5e-4 : 4e-5, minLr: tiny ? 5e-6 : 1e-8, warmup: tiny ? 15 : 4000,
    // base: the authors' AdamW (MAMA.md §5); tiny keeps decay on matrices only and clipping at 1,
    // the settings its figures were measured with (README: Deviations from the authors).
    lateStep: tiny ? 75 : 8000, weightDecay: tiny ? 0.05 : 0.1, decayAll: !tiny, maxGradNorm: tiny ? 1 : null, seed: 0, checkpointEvery: tiny ? 100 : 2000, evalEvery: tiny ? 75 : 2000,
    probeSteps: 8000, probeLr: 5e-4, pooling: 'mean', jitter: tiny ? 0 : 0.8, gather: 'ntxent', syncBn: false,
    // The protocols on augmented images run behind `mamakit eval --probe-protocol authors` / `--finetune`:
    // the paper's 8000 steps of 72 images through the encoder take hours on a CPU (README).
    probeProtocol: 'cached', authorsProbeSteps: tiny ? TINY_HEADS.probeSteps : 8000, authorsProbeLr: tiny ? TINY_HEADS.probeLr : 5e-4,
    finetune: false, finetuneSteps: tiny ? TINY_HEADS.finetuneSteps : 8000, finetuneLr: tiny ? TINY_HEADS.finetuneLr : 5e-4, headBatch: 72, headWarmup: null,
  };
}

export interface RunResult {
  steps: number;
  metrics: Record<string, number>;
  out: string;
  interrupted: boolean;
  /** this process's rank under mpirun (0 without): only rank 0 evaluates and has metrics */
  rank: number;
}

/** Trains (or resumes) and evaluates; writes the run folder. */
// The device asked for (default cpu), or a RangeError saying why CUDA cannot be used.
export function usable(what: string, device: Device | undefined): Device {
  if (device === 'cuda' && !backends().includes('cuda')) throw new RangeError(`${what}: device cuda is not available (${cudaStatus().detail})`);
  return device ?? 'cpu';
}

/** What pretrain reports after each optimizer step (opts.onStep). */
export interface StepInfo {
  /** the metrics.jsonl row of the step */
  row: Record<string, number>;
  /** host↔device traffic of the step on CUDA, from zeroing the gradients to reading the row back */
  transfers: TransferStats;
}

/**
 * Under mpirun every rank trains on its shard of each epoch (cfg.batch images per micro-batch and
 * rank) and the ranks average their gradients before each optimizer step, so that every rank
 * takes the same step; rank 0 alone logs and writes the run folder, evaluates, and returns the
 * metrics (the other ranks return when training ends).
 */
export async function pretrain(cfg: TrainConfig, opts: { resume?: boolean; log?: (line: string) => void; evaluate?: boolean; onStep?: (s: StepInfo) => void } = {}): Promise<RunResult> {
  const comm = dist.launchedByMpi() ? dist.init() : null, rank = comm?.rank ?? 0, ranks = comm?.size ?? 1, lead = rank === 0;
  const log = !lead ? () => {} : opts.log ?? ((l: string) => process.stderr.write(l));
  // Without a terminal (a log file, CI) the bar becomes a line every 10 s, not a redraw per step.
  const redraw = opts.log !== undefined || process.stderr.isTTY === true;
  checkConfig(cfg);
  const device = usable('pretrain', cfg.device);
  if (lead && !existsSync(join(cfg.data, 'metadata.csv'))) {
    if (!cfg.synthStudies) throw new Error(`pretrain: ${cfg.data}/metadata.csv not found (give --data, or --synth-studies N to generate)`);
    log(`generating ${cfg.synthStudies} synthetic studies in ${cfg.data} …\n`);
    await generateStudies({ out: cfg.data, studies: cfg.synthStudies, size: Math.max(cfg.model.vit.imageSize, 64), seed: cfg.seed });
  }
  comm?.barrier(); // the data rank 0 generated
  if (!lead && !existsSync(join(cfg.data, 'metadata.csv'))) throw new Error(`pretrain: rank ${rank}: ${cfg.data}/metadata.csv not found (every rank reads the data: put it where each one finds it)`);
  if (comm && lead) log(`${ranks} ranks (${comm.detail}): ${cfg.batch} images per micro-batch and rank, gradients averaged over the ranks, ${{ ntxent: `NT-Xent over all ${ranks * cfg.batch} pairs`, all: `every term over all ${ranks * cfg.batch} pairs`, none: "every term over the rank's own pairs" }[cfg.gather ?? 'ntxent']}${cfg.syncBn ? ', BatchNorm of the patch and SimCLR heads over every rank\'s rows' : ''}\n`);
  if (cfg.model.lora && !cfg.textWeights) {
    log('no textWeights: the text encoder trains fully (LoRA adapts a pre-trained language model)\n');
    cfg = { ...cfg, model: { ...cfg.model, lora: undefined } };
  }
  cfg = { ...cfg, precision: precisionOf(cfg) };
  if (lead) mkdirSync(cfg.out, { recursive: true }), writeFileSync(join(cfg.out, 'config.json'), JSON.stringify(cfg, null, 1) + '\n');
  const { images, skipped } = loadEmbed(join(cfg.data, 'metadata.csv'), join(cfg.data, 'clinical.csv'), cfg.data, cfg.seed);
  const tok = CaptionTokenizer.fromFile(cfg.tokenizer);
  if (tok.vocabSize > cfg.model.text.vocab) throw new Error(`pretrain: the tokenizer has ${tok.vocabSize} tokens, the text encoder ${cfg.model.text.vocab}`);
  const train = images.filter((i) => i.split === 'train'), val = images.filter((i) => i.split === 'val');
  const model = new Mama(cfg.model, cfg.seed);
  if (comm && cfg.syncBn) model.syncBatchNorm(comm);
  const arena = new ParamArena(model, { device, dtype: cfg.precision });
  loadPretrained(model, cfg, log);
  const opt = new AdamW(arena, { lr: cfg.lr, weightDecay: cfg.weightDecay, decayAll: cfg.decayAll, maxGradNorm: cfg.maxGradNorm ?? undefined });
  const early = [model.patchHead, model.sentenceHead, model.simclr].flatMap((m) => m.namedParameters().map(([, p]) => p)).concat(model.localScale).filter((p) => p.requiresGrad);
  let step = 0;
  const ckpt = join(cfg.out, 'checkpoint');
  let saved: number | null = null; // the step of the checkpoint on disk that this run wrote or resumed from
  let resumed: Record<string, unknown> | null = null; // its state: the step and the data position
  if (opts.resume && existsSync(join(ckpt, 'state.safetensors'))) saved = step = (resumed = loadCheckpoint(ckpt, arena, opt)).step as number;
  if (comm) startFromRank0(comm, arena, opt);
  const metricsPath = join(cfg.out, 'metrics.jsonl');
  // Only rank 0 writes the run folder.
  if (lead && !opts.resume) writeFileSync(metricsPath, '');
  else if (lead && existsSync(metricsPath)) {
    // Rows past the checkpoint (written after it, before an interruption) would repeat.
    const keep = readMetrics(metricsPath).filter((r) => r.step <= step);
    writeFileSync(metricsPath, keep.map((r) => JSON.stringify(r) + '\n').join(''));
  }
  // Unreadable images: the first few named as found, a run that is mostly unreadable stops (epoch() throws).
  const onUnreadable = (why: string, n: number) => n <= 3 && log(`\nskipping an unreadable image: ${why}\n`);
  const loader = new Loader(train, tok, {
    size: cfg.model.vit.imageSize, batch: cfg.batch, seed: cfg.seed, train: true, maxTokens: cfg.model.maxTokens, workers: cfg.workers, maxUnreadable: 0.5, onUnreadable, jitter: cfg.jitter ?? 0.8,
    shard: { rank, size: ranks },
  });
  const perEpoch = loader.perEpoch; // micro-batches of this rank
  if (perEpoch < 1) throw (await loader.close(), new Error(`pretrain: ${train.length} training images are fewer than one batch of ${cfg.batch}${ranks > 1 ? ` for each of ${ranks} ranks` : ''}`));
  // Where the data continues: the epoch and the sample of its order that the checkpoint names, so a
  // resume on other ranks, batch or accumulation takes the images the run would have taken next;
  // a checkpoint without them (written before they were saved) from the step, which is right when
  // ranks × batch × accum are the run's that wrote it.
  let { epoch, sample } = dataPosition(resumed, step * cfg.accum, perEpoch, ranks * cfg.batch);
  if (sample > train.length) throw (await loader.close(), new Error(`pretrain: the checkpoint continues at sample ${sample} of epoch ${epoch}, but there are ${train.length} training images: is this the data it was trained on?`));
  if (comm) {
    try {
      agreeOnResume(comm, step, epoch, sample);
    } catch (e) {
      throw (await loader.close(), e);
    }
  }
  // The position after the last optimizer step, which checkpoints record (micro-batches trained
  // after it, toward a step that an interruption leaves undone, are trained again on resume).
  let stepEnd = { epoch, sample };
  if (resumed) log(`resuming at step ${step}: epoch ${epoch}, sample ${sample} of ${train.length}\n`);
  // Ctrl-C stops after the step; under mpirun the ranks stop at the first step any rank saw it, or
  // SIGUSR1 (which mpirun, unlike SIGINT, forwards to every rank: Ctrl-C on mpirun kills the job).
  let stop = false, asked = false;
  const onSigint = () => {
    asked = true;
    if (!comm) stop = true;
  };
  const signals: NodeJS.Signals[] = comm ? ['SIGINT', 'SIGUSR1'] : ['SIGINT'];
  for (const sig of signals) process.once(sig, onSigint);
  // The clock starts at the first batch this process trains on.
  let t0 = 0;
  const start = step, perStep = cfg.batch * cfg.accum * ranks;
  let lastLine = 0;
  // One loader for every validation point: its worker decodes the val images once.
  const valOpts = { imageSize: cfg.model.vit.imageSize, maxTokens: cfg.model.maxTokens, workers: cfg.workers };
  const valLoader = lead && cfg.evalEvery && val.length ? evalLoader(val, tok, valOpts) : null;
  const validate = async () => {
    if (!valLoader) return void comm?.barrier(); // the other ranks wait for rank 0's
    const m = await evaluate(model, tok, images, { ...valOpts, split: 'val', probes: false, tasks: ['density'], pooling: cfg.pooling, loader: valLoader });
    writeFileSync(metricsPath, JSON.stringify({ step, val_zeroshot_density_bacc: m.zeroshot_density_bacc, val_zeroshot_density_auc: m.zeroshot_density_auc }) + '\n', { flag: 'a' });
    comm?.barrier();
  };
  try {
    // The step's loss terms accumulate on the device and come back in one copy with the logit
    // scale; across ranks they are averaged with whether a rank was interrupted (all stop then).
    const terms = ['loss', 'clip', 'clip2', 'ntxent', 'local'];
    const sums = Tensor.zeros([terms.length + 3], { device });
    const slots = terms.map((_, i) => sums.view(i, [1]));
    const scaleSlot = sums.view(terms.length, [1]), localSlot = sums.view(terms.length + 1, [1]), stopSlot = sums.view(terms.length + 2, [1]);
    // micro: micro-batches trained on (every rank the same count), which seeds their dropout masks.
    let micro = step * cfg.accum, present = new Set<string>(), traffic = transferStats(), shortLogged = false, rows: number[] | undefined;
    while (step < cfg.steps && !stop) {
      let ended = true;
      for await (const batch of loader.epoch(epoch, sample)) {
        sample = batch.end;
        if (comm) {
          // Unreadable images can leave a rank's batch short: every rank skips a batch that any
          // rank has fewer than 2 samples of (contrastive losses and BatchNorm need 2).
          // The counts go on to the gathered loss terms, which need them too.
          const n = Tensor.fromArray(Float32Array.of(batch.lens.length), [1]), all = comm.allGather(n);
          rows = Array.from(all.toArray());
          n.dispose(), all.dispose();
          const fewest = Math.min(...rows);
          if (fewest < 2) {
            if (!shortLogged) log(`\nskipping a micro-batch on every rank: rank ${rows.indexOf(fewest)} has ${fewest} readable image(s) of ${cfg.batch} (no further such message)\n`), (shortLogged = true);
            continue;
          }
        }
        if (!t0) t0 = performance.now();
        const late = step >= cfg.lateStep;
        if (micro % cfg.accum === 0) arena.zeroGrad(), kernels.fill(sums, 0), (present = new Set()), (traffic = transferStats());
        // Each micro-batch's loss (its own negatives, as the paper's per-GPU batches) weighs 1/accum.
        // The ranks' batches draw the text dropout masks of the one batch they make together.
        const r = model.loss(batch, late, micro + 1, { gather: comm && cfg.gather !== 'none' ? comm : null, all: cfg.gather === 'all', rows, dropoutRow: rank * cfg.batch });
        for (const [n, v] of Object.entries({ loss: r.loss, ...r.parts })) kernels.axpy(slots[terms.indexOf(n)], v.value, 1 / cfg.accum), present.add(n);
        backward(r.loss, like(r.loss.value, [1], { fill: 1 / cfg.accum })); // backward consumes its seed
        r.inputs.forEach((t) => t.dispose());
        if (++micro % cfg.accum) continue;
        if (comm) {
          // One reduction of every gradient before clipping and AdamW: the same step on every rank.
          comm.allReduceRange(arena.grads, arena.trainable.offset, arena.trainable.length, 'mean');
          kernels.fill(stopSlot, asked ? 1 : 0);
          comm.allReduce(sums, 'mean');
        }
        const lr = warmupCosine(step, { lr: cfg.lr, warmup: cfg.warmup, total: cfg.steps, minLr: cfg.minLr });
        // Before lateStep the heads outside the image-text loss stay exactly as they are (no decay either).
        const gradNorm = opt.update(lr, late ? [] : early);
        step++;
        stepEnd = { epoch, sample };
        kernels.cast(model.logitScale.master ?? model.logitScale.value, 'f32', scaleSlot);
        kernels.cast(model.localScale.master ?? model.localScale.value, 'f32', localSlot);
        const host = sums.toArray(), row: Record<string, number> = { step };
        if (comm) stop = host[terms.length + 2] > 0;
        terms.forEach((n, i) => present.has(n) && (row[n] = host[i]));
        Object.assign(row, { lr, gradNorm, logitScale: host[terms.length] });
        // A diverged state is never saved: the run stops here, the last checkpoint stays.
        const bad = divergence({ ...row, localScale: host[terms.length + 1] }, terms.filter((n) => present.has(n)));
        if (bad && redraw) log('\n');
        const clip = cfg.maxGradNorm == null ? ' or gradient clipping (--set maxGradNorm=1)' : '';
        if (bad) throw new Error(`pretrain: diverged at step ${step}: ${bad}. ${saved === null ? `No checkpoint was saved yet: try a lower --lr (now ${cfg.lr})${clip}` : `The last good checkpoint (step ${saved}) is in ${ckpt}: try a lower --lr (now ${cfg.lr})${clip} and --resume`}`);
        if (lead) writeFileSync(metricsPath, JSON.stringify(row) + '\n', { flag: 'a' });
        if (opts.onStep) {
          const now = transferStats();
          opts.onStep({ row, transfers: { toDevice: now.toDevice - traffic.toDevice, toHost: now.toHost - traffic.toHost, syncs: now.syncs - traffic.syncs } });
        }
        const secs = (performance.now() - t0) / 1000, rate = ((step - start) * perStep) / secs;
        const left = ((cfg.steps - step) * perStep) / rate;
        const bar = '█'.repeat(Math.round((20 * step) / cfg.steps)).padEnd(20, '░');
        const line = `${bar} ${step}/${cfg.steps} loss ${row.loss.toFixed(3)} ${late ? '(all terms)' : '(image-text)'} ${rate.toFixed(1)} samples/s, ${formatTime(left)} left`;
        if (redraw) log(`\r${line}   `);
        else if (secs - lastLine >= 10 || step >= cfg.steps || stop || step === start + 1) (lastLine = secs), log(line + '\n');
        if (cfg.evalEvery && step % cfg.evalEvery === 0) await validate();
        if (step % cfg.checkpointEvery === 0 || step === cfg.steps || stop) lead && saveCheckpoint(ckpt, arena, opt, { step, ...stepEnd }), (saved = step);
        if (step >= cfg.steps || stop) {
          ended = false;
          break;
        }
      }
      if (ended) epoch++, (sample = 0);
    }
  } finally {
    for (const sig of signals) process.removeListener(sig, onSigint);
    await loader.close();
    await valLoader?.close();
  }
  if (redraw) log('\n');
  const unreadable = comm ? unreadableOnRanks(comm, loader) : loader.unreadableNote() || 'no unreadable training image found';
  log(`${unreadable}\n`);
  if (lead) writeFileSync(join(cfg.out, 'unreadable.txt'), unreadable);
  if (!lead) return { steps: step, metrics: {}, out: cfg.out, interrupted: stop, rank };
  if (stop) {
    saveCheckpoint(ckpt, arena, opt, { step, ...stepEnd });
    log(`interrupted at step ${step}; checkpoint saved in ${ckpt} (continue with --resume)\n`);
    return { steps: step, metrics: {}, out: cfg.out, interrupted: true, rank };
  }
  writePlots(cfg.out, `MaMA ${cfg.preset}`);
  let metrics: Record<string, number> = {};
  if (opts.evaluate !== false) {
    log('evaluating …\n');
    metrics = await evaluate(model, tok, images, evalOptions(cfg, log));
    writeFileSync(join(cfg.out, 'eval.json'), evalJson(cfg, metrics));
  }
  report(cfg, metrics, skipped, images.length, 'test');
  return { steps: step, metrics, out: cfg.out, interrupted: false, rank };
}

/**
 * The epoch and the sample of its order that training continues at: the checkpoint's, or for a
 * checkpoint without them (or none), that of `micro` micro-batches per rank of `perEpoch` each
 * with `group` samples per micro-batch over the ranks (the loop before positions were saved).
 */
function dataPosition(state: Record<string, unknown> | null, micro: number, perEpoch: number, group: number): { epoch: number; sample: number } {
  const whole = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
  if (state && whole(state.epoch) && whole(state.sample)) return { epoch: state.epoch, sample: state.sample };
  const epoch = Math.floor(micro / perEpoch);
  return { epoch, sample: (micro - epoch * perEpoch) * group };
}

/** unreadable.txt under mpirun: the training images that some rank could not read (every rank calls it). */
function unreadableOnRanks(comm: dist.Communicator, loader: Loader): string {
  const images = loader.images, seen = Tensor.fromArray(Float32Array.from(images, (im) => (loader.unreadable.has(im.path) ? 1 : 0)), [images.length]);
  const any = comm.allReduce(seen).toArray();
  seen.dispose();
  const bad = images.filter((_, i) => any[i] > 0);
  if (!bad.length) return 'no unreadable training image found';
  // Rank 0's reasons where it saw the image, the path alone where another rank did.
  const why = bad.slice(0, 3).map((im) => loader.unreadable.get(im.path) ?? `${im.path} (unreadable on another rank)`);
  return `${bad.length} of ${images.length} images could not be read on ${comm.size} ranks (skipped): ${why.join('; ')}${bad.length > 3 ? ' …' : ''}`;
}

/**
 * Every rank must continue where rank 0 does, at its step and data position: each read the
 * checkpoint itself (f32 carries them exactly up to 2^24).
 */
function agreeOnResume(comm: dist.Communicator, step: number, epoch: number, sample: number): void {
  const t = Tensor.fromArray(Float32Array.of(step, epoch, sample), [3]), root = comm.broadcast(t).toArray();
  t.dispose();
  if (root[0] !== step || root[1] !== epoch || root[2] !== sample)
    throw new Error(`pretrain: rank ${comm.rank} resumes at step ${step} (epoch ${epoch}, sample ${sample}), rank 0 at step ${root[0]} (epoch ${root[1]}, sample ${root[2]}): every rank reads the checkpoint, so the run folder must be on a filesystem every rank sees`);
}

/**
 * Data parallel: every rank starts from rank 0's parameters and AdamW state (those of its
 * initialisation, pre-trained weights or checkpoint).
 */
function startFromRank0(comm: dist.Communicator, arena: ParamArena, opt: AdamW): void {
  comm.broadcast(arena.values);
  if (arena.compute !== arena.values) comm.broadcast(arena.compute); // mixed precision: the 16-bit frozen weights
  comm.broadcast(opt.m), comm.broadcast(opt.v);
}

/** The pre-trained encoders named in the config, loaded before training starts. */
function loadPretrained(model: Mama, cfg: TrainConfig, log: (l: string) => void): void {
  if (cfg.imageWeights) {
    const n = loadWeights(model.image, cfg.imageWeights).length;
    log(`image encoder: ${n} tensors from ${cfg.imageWeights}\n`);
  }
  if (cfg.textWeights) {
    // LoRA's own matrices are new; every base tensor must be in the file.
    const got = new Set(loadWeights(model.text, cfg.textWeights, { strict: false, extraRows: ['wte.weight'] }));
    const missing = model.text.namedParameters().map(([n]) => n).filter((n) => !got.has(n) && !/lora_[AB]/.test(n));
    if (missing.length) throw new RangeError(`${cfg.textWeights}: ${missing.length} text encoder tensor(s) not in the file: ${missing.slice(0, 5).join(', ')}`);
    log(`text encoder: ${got.size} tensors from ${cfg.textWeights}${cfg.model.lora ? ' (frozen; LoRA trains)' : ''}\n`);
  }
}

// What went out of bounds in a step's row, or null: a non-finite loss term or gradient norm, or
// a scale outside the [-80, 80] the loss kernels take.
function divergence(row: Record<string, number>, terms: string[]): string | null {
  for (const t of terms) if (!Number.isFinite(row[t])) return `the ${t === 'loss' ? 'loss' : `${t} loss term`} is ${row[t]}`;
  if (!Number.isFinite(row.gradNorm)) return `the gradient norm is ${row.gradNorm}`;
  for (const [k, name] of [['logitScale', 'logit_scale'], ['localScale', 'local_scale']])
    if (!(Math.abs(row[k]) <= 80)) return `${name} is ${row[k].toFixed(4)}, outside the [-80, 80] the loss kernels take`;
  return null;
}

function formatTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m ? `${m} min ${Math.round(s - 60 * m)} s` : `${Math.ceil(s)} s`;
}

export function checkConfig(cfg: TrainConfig): void {
  for (const k of ['steps', 'batch', 'accum', 'checkpointEvery'] as const)
    if (!(Number.isInteger(cfg[k]) && cfg[k] >= 1)) throw new RangeError(`pretrain: ${k} must be an integer ≥ 1, got ${cfg[k]}`);
  for (const k of ['warmup', 'lateStep', 'evalEvery', 'probeSteps', 'seed'] as const)
    if (!(Number.isInteger(cfg[k]) && cfg[k] >= 0)) throw new RangeError(`pretrain: ${k} must be an integer ≥ 0, got ${cfg[k]}`);
  if (cfg.maxGradNorm != null && !(cfg.maxGradNorm > 0 && Number.isFinite(cfg.maxGradNorm))) throw new RangeError(`pretrain: maxGradNorm must be a finite number > 0 or null, got ${cfg.maxGradNorm}`);
  for (const k of ['lr', 'minLr', 'weightDecay', 'probeLr'] as const) if (!(cfg[k] >= 0 && Number.isFinite(cfg[k]))) throw new RangeError(`pretrain: ${k} must be a finite number ≥ 0, got ${cfg[k]}`);
  if (cfg.jitter !== undefined && !(cfg.jitter >= 0 && cfg.jitter <= 1)) throw new RangeError(`pretrain: jitter must be a probability in [0, 1], got ${cfg.jitter}`);
  for (const k of ['authorsProbeLr', 'finetuneLr'] as const)
    if (cfg[k] !== undefined && !(cfg[k]! >= 0 && Number.isFinite(cfg[k]))) throw new RangeError(`pretrain: ${k} must be a finite number ≥ 0, got ${cfg[k]}`);
  if (cfg.workers !== undefined && !(Number.isInteger(cfg.workers) && cfg.workers >= 1)) throw new RangeError(`pretrain: workers must be an integer ≥ 1, got ${cfg.workers}`);
  for (const k of ['authorsProbeSteps', 'finetuneSteps', 'headBatch'] as const)
    if (cfg[k] !== undefined && !(Number.isInteger(cfg[k]) && cfg[k]! >= 1)) throw new RangeError(`pretrain: ${k} must be an integer ≥ 1, got ${cfg[k]}`);
  if (cfg.headWarmup != null && !(Number.isInteger(cfg.headWarmup) && cfg.headWarmup >= 0)) throw new RangeError(`pretrain: headWarmup must be an integer ≥ 0 or null, got ${cfg.headWarmup}`);
  if (cfg.probeProtocol !== undefined && cfg.probeProtocol !== 'cached' && cfg.probeProtocol !== 'authors') throw new RangeError(`pretrain: probeProtocol must be cached or authors, got ${cfg.probeProtocol}`);
  if (cfg.finetune !== undefined && typeof cfg.finetune !== 'boolean') throw new RangeError(`pretrain: finetune must be true or false, got ${cfg.finetune}`);
  if (cfg.gather !== undefined && !['ntxent', 'all', 'none'].includes(cfg.gather)) throw new RangeError(`pretrain: gather must be ntxent, all or none, got ${cfg.gather}`);
  if (cfg.syncBn !== undefined && typeof cfg.syncBn !== 'boolean') throw new RangeError(`pretrain: syncBn must be true or false, got ${cfg.syncBn}`);
  if (cfg.pooling !== 'mean' && cfg.pooling !== 'first-pad') throw new RangeError(`pretrain: pooling must be mean or first-pad, got ${cfg.pooling}`);
  const precision = precisionOf(cfg);
  if (precision !== 'f32' && precision !== 'bf16') throw new RangeError(`pretrain: precision must be f32 or bf16, got ${precision}`);
  if (precision !== 'f32' && cfg.device !== 'cuda') throw new RangeError(`pretrain: precision ${precision} needs device cuda (the CPU computes in f32)`);
}

function evalOptions(cfg: TrainConfig, log: (l: string) => void) {
  return { imageSize: cfg.model.vit.imageSize, maxTokens: cfg.model.maxTokens, pooling: cfg.pooling, probe: { steps: cfg.probeSteps, lr: cfg.probeLr }, seed: cfg.seed, workers: cfg.workers, jitter: cfg.jitter, log, ...headOptions(cfg) };
}

// The settings of the protocols on augmented images (finetune.ts); the paper's where the config has none.
export function headOptions(cfg: TrainConfig): Pick<EvalOptions, 'probeProtocol' | 'authorsProbe' | 'finetune' | 'finetuneOptions'> {
  const probeSteps = cfg.authorsProbeSteps ?? 8000, finetuneSteps = cfg.finetuneSteps ?? 8000, batch = cfg.headBatch ?? 72;
  return {
    probeProtocol: cfg.probeProtocol ?? 'cached', finetune: cfg.finetune ?? false,
    authorsProbe: { steps: probeSteps, lr: cfg.authorsProbeLr ?? 5e-4, batch, warmup: headWarmup(cfg, probeSteps) },
    finetuneOptions: { steps: finetuneSteps, lr: cfg.finetuneLr ?? 5e-4, batch, warmup: headWarmup(cfg, finetuneSteps) },
  };
}

// report.md's words on the probe and fine-tune settings.
function headSummary(cfg: TrainConfig): string {
  const h = headOptions(cfg), a = h.authorsProbe!, f = h.finetuneOptions!;
  let s = h.probeProtocol === 'authors'
    ? `linear probe: the authors' protocol (augmented images through the frozen encoder every step), ${a.steps} SGD steps of ${a.batch}, warm-up ${a.warmup}, lr ${a.lr} cosine to 1e-5, random label fractions`
    : `linear probe: cached features (test transform), ${cfg.probeSteps} SGD steps, lr ${cfg.probeLr}, fractions per class`;
  if (h.finetune) s += `; full fine-tune: ${f.steps} SGD steps of ${f.batch}, warm-up ${f.warmup}, lr ${f.lr} cosine to 1e-5, random label fractions`;
  return s;
}

/** eval.json: the metrics, and the probe protocol they were measured with. */
function evalJson(cfg: TrainConfig, metrics: Record<string, number>): string {
  return JSON.stringify({ ...metrics, probe_protocol: cfg.probeProtocol ?? 'cached' }, null, 1) + '\n';
}

/** report.md for a run folder; the CLIP-only run beside it (out + '-clip-only') adds its rows. */
function report(cfg: TrainConfig, metrics: Record<string, number>, skipped: Record<string, number>, n: number, split: string): void {
  const rows = readMetrics(join(cfg.out, 'metrics.jsonl')).filter((r) => r.loss !== undefined).length;
  let summary = `${rows} steps of ${cfg.batch}${cfg.accum > 1 ? ` × ${cfg.accum} micro-batches` : ''}, lr ${cfg.lr}, lateStep ${cfg.lateStep}, seed ${cfg.seed}; data ${cfg.data} (${n} images`;
  summary += Object.keys(skipped).length ? `, skipped: ${JSON.stringify(skipped)})` : ')';
  const unreadable = join(cfg.out, 'unreadable.txt'); // written by pretrain: the training images that could not be read
  if (existsSync(unreadable)) summary += `; ${readFileSync(unreadable, 'utf8')}`;
  summary += `; zero-shot prompts pooled by ${cfg.pooling}; ${headSummary(cfg)}.`;
  const compare: Record<string, Record<string, number>> = {};
  const other = `${cfg.out.replace(/\/+$/, '')}-clip-only/eval.json`;
  if (!cfg.out.endsWith('-clip-only') && existsSync(other)) compare['CLIP-only pre-training'] = JSON.parse(readFileSync(other, 'utf8'));
  writeReport(cfg.out, { title: `MaMA pre-training: ${cfg.preset}${cfg.lateStep >= cfg.steps ? ' (image-text loss only)' : ''}`, summary, metrics, split, compare });
}

/** A run folder's config.json, defaults filling the fields it lacks, `out` set to the folder. */
export function readRunConfig(run: string, what: string): TrainConfig {
  const cfgPath = join(run, 'config.json');
  if (!existsSync(cfgPath)) throw new Error(`${what}: ${cfgPath} not found (give the folder pretrain wrote)`);
  let cfg: TrainConfig;
  try {
    cfg = { ...defaultConfig(), ...(JSON.parse(readFileSync(cfgPath, 'utf8')) as TrainConfig) };
  } catch (e) {
    throw new Error(`${what}: ${cfgPath} is not valid JSON (${(e as Error).message})`);
  }
  cfg.out = run;
  return cfg;
}

/** A run's model with the weights of a checkpoint, on `device`. */
export function loadRunModel(cfg: TrainConfig, weights: string, device: Device, what: string): Mama {
  if (!existsSync(weights)) throw new Error(`${what}: ${weights} not found`);
  const model = new Mama(cfg.model, cfg.seed);
  // On CUDA the run's precision, so that a mixed-precision run's figures come back as it wrote them.
  new ParamArena(model, { device, dtype: device === 'cuda' ? cfg.precision ?? 'f32' : 'f32' });
  loadWeights(model, weights);
  return model;
}

/** runEval's settings of the probe protocol and the fine-tune (TrainConfig's fields of those names). */
export type EvalHeadFlags = Partial<Pick<TrainConfig, 'probeProtocol' | 'finetune' | 'finetuneSteps' | 'finetuneLr' | 'headBatch' | 'headWarmup'>>;

/** The fine-tune and head flags of `mamakit eval` (EMBED or RSNA) over a run's config. */
export function applyHeadFlags(cfg: TrainConfig, o: Omit<EvalHeadFlags, 'probeProtocol'>): void {
  for (const k of ['finetune', 'finetuneSteps', 'finetuneLr', 'headBatch', 'headWarmup'] as const) if (o[k] !== undefined) (cfg as unknown as Record<string, unknown>)[k] = o[k];
}

/**
 * `mamakit eval`: a run folder's checkpoint (or `weights`, a model.safetensors under our names)
 * evaluated on a split; writes eval.json (eval-<split>.json for val) and report.md.
 */
export async function runEval(run: string, o: { weights?: string; data?: string; split?: 'test' | 'val'; pooling?: TextPooling; probeSteps?: number; probeLr?: number; device?: Device; log?: (l: string) => void } & EvalHeadFlags = {}) {
  const log = o.log ?? ((l: string) => process.stderr.write(l));
  const device = usable('eval', o.device);
  const cfg = readRunConfig(run, 'eval');
  if (o.data) cfg.data = o.data;
  if (o.pooling) cfg.pooling = o.pooling;
  if (o.probeProtocol !== undefined) cfg.probeProtocol = o.probeProtocol;
  // --probe-steps and --probe-lr set the probe of the protocol run: the cached one's or the authors'.
  const authors = cfg.probeProtocol === 'authors';
  if (o.probeSteps !== undefined) cfg[authors ? 'authorsProbeSteps' : 'probeSteps'] = o.probeSteps;
  if (o.probeLr !== undefined) cfg[authors ? 'authorsProbeLr' : 'probeLr'] = o.probeLr;
  applyHeadFlags(cfg, o);
  checkConfig(cfg);
  const model = loadRunModel(cfg, o.weights ?? join(run, 'checkpoint', 'model.safetensors'), device, 'eval');
  const { images, skipped } = loadEmbed(join(cfg.data, 'metadata.csv'), join(cfg.data, 'clinical.csv'), cfg.data, cfg.seed);
  const tok = CaptionTokenizer.fromFile(cfg.tokenizer);
  const split = o.split ?? 'test';
  const metrics = await evaluate(model, tok, images, { ...evalOptions(cfg, log), split });
  writeFileSync(join(run, split === 'test' ? 'eval.json' : `eval-${split}.json`), evalJson(cfg, metrics));
  if (split === 'test') report(cfg, metrics, skipped, images.length, split);
  return metrics;
}
