// mama_step.bench.ts: one whole MaMA micro-batch step as pretrain runs it after lateStep (both
// views, the text, the four loss terms, backward, AdamW with clipping) against the same step in
// PyTorch (bench/peers/mama_step.py, run first in its own process): seconds per step, studies
// and image forwards per second, peak memory, parameter counts (which must match).
// Run: npm run bench -- mama_step   (tiny preset, batch 4, on the CPU), or directly with options:
//   node dist/bench/mama_step.bench.js --preset base --batch 36 --device cuda --precision bf16 --checkpoint on [--peer off]
// Each option is also read from the environment as MAMA_STEP_<NAME> (MAMA_STEP_BATCH=8).
import { backends, cudaStatus, mama, memoryStats, nn, optim, autograd, type Device } from 'mamakit';
import { fmtValue, pythonPeer, Recorder } from './harness.js';

interface Options {
  preset: keyof typeof mama.mamaPresets;
  batch: number;
  /** 0: the preset's */
  imageSize: number;
  device: Device;
  precision: 'f32' | 'bf16';
  checkpoint: 'on' | 'off';
  /** timed steps, after `warmup` */
  steps: number;
  warmup: number;
  /** 'off': ours alone (bench/gpu.sh runs the peer in a process of its own) */
  peer: 'on' | 'off';
  /** CPU: peer and ours alternate this many times and each keeps its best (one on CUDA) */
  rounds: number;
}

function options(): Options {
  const o: Record<string, string> = { preset: 'tiny', batch: '4', imageSize: '0', device: 'cpu', precision: 'f32', checkpoint: 'off', steps: '3', warmup: '1', peer: 'on', rounds: '3' };
  const camel = (s: string) => s.toLowerCase().replace(/[-_](\w)/g, (_, c: string) => c.toUpperCase());
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('MAMA_STEP_') && v) o[camel(k.slice(10))] = v;
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const k = camel(argv[i].replace(/^--/, ''));
    if (!(k in o) || argv[i + 1] === undefined) throw new RangeError(`mama_step: unknown option ${argv[i]} (or no value); options: ${Object.keys(o).join(', ')}`);
    o[k] = argv[i + 1];
  }
  const int = (k: string) => {
    const n = Number(o[k]);
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`mama_step: ${k} must be an integer ≥ 0, got ${o[k]}`);
    return n;
  };
  if (!(o.preset in mama.mamaPresets)) throw new RangeError(`mama_step: preset must be one of ${Object.keys(mama.mamaPresets).join(', ')}`);
  return { ...(o as unknown as Options), batch: int('batch'), imageSize: int('imageSize'), steps: int('steps'), warmup: int('warmup'), rounds: Math.max(1, int('rounds')) };
}

/**
 * Synthetic studies, drawn as mama_step.py draws them: both views uniform in [-1, 1], random
 * token ids, caption b of L − (37b mod L/4) tokens with 8 + b mod 5 separators spread evenly.
 */
function syntheticBatch(cfg: mama.MamaConfig, B: number): mama.MamaBatch {
  const S = cfg.vit.imageSize, L = cfg.maxTokens;
  const image = () => Float32Array.from({ length: B * S * S }, () => Math.random() * 2 - 1);
  const lens = Int32Array.from({ length: B }, (_, b) => L - ((b * 37) % Math.floor(L / 4)));
  const sentences = Array.from(lens, (n, b) => Int32Array.from({ length: 8 + (b % 5) }, (_, j) => Math.floor(((j + 1) * n) / (8 + (b % 5) + 1))));
  const ids = Int32Array.from({ length: B * L }, () => Math.floor(Math.random() * cfg.text.vocab));
  return { images: image(), views: image(), ids, lens, sentences };
}

/** Total and trainable parameters, BatchNorm's running statistics left out (PyTorch's buffers). */
function paramCounts(arena: nn.ParamArena): { total: number; trainable: number } {
  const size = (p: nn.Param) => p.shape.reduce((a, b) => a * b, 1);
  const params = arena.params.filter(([n]) => !/running_(mean|var)$/.test(n)).map(([, p]) => p);
  return { total: params.reduce((s, p) => s + size(p), 0), trainable: params.filter((p) => p.requiresGrad).reduce((s, p) => s + size(p), 0) };
}

/**
 * Ours, built and warmed up (o.warmup steps); time() gives seconds per step (median of o.steps)
 * and the peak bytes over them.
 */
function ours(o: Options, cfg: mama.MamaConfig) {
  const model = new mama.Mama(cfg, 0);
  model.image.checkpointBlocks = o.checkpoint === 'on';
  const arena = new nn.ParamArena(model, { device: o.device, dtype: o.precision });
  const opt = new optim.AdamW(arena, { lr: 4e-5, weightDecay: 0.1, maxGradNorm: 1 });
  const batch = syntheticBatch(cfg, o.batch);
  let seed = 0, loss = NaN;
  const step = () => {
    arena.zeroGrad();
    const r = model.loss(batch, true, ++seed);
    autograd.backward(r.loss);
    r.inputs.forEach((t) => t.dispose());
    opt.update();
    loss = r.loss.value.toArray()[0]; // waits for the device: the step is over
    r.loss.dispose();
  };
  for (let i = 0; i < o.warmup; i++) step();
  const time = () => {
    memoryStats(true);
    const times: number[] = [];
    for (let i = 0; i < o.steps; i++) {
      const t0 = performance.now();
      step();
      times.push((performance.now() - t0) / 1000);
    }
    const m = memoryStats();
    return { seconds: median(times), peakBytes: o.device === 'cuda' ? m.cuda!.peakBytes : m.peakBytes, loss };
  };
  return { time, ...paramCounts(arena) };
}

/**
 * Makes InitRng.truncNormal draw `block` values and repeat them to fill a larger tensor: at base
 * its 2.7 billion draws would keep the host busy for over an hour (~2 µs each here); a timing
 * needs weights of the right scale only.
 */
function tileInitDraws(block: number): void {
  const draw = nn.InitRng.prototype.truncNormal;
  nn.InitRng.prototype.truncNormal = function (n: number, std: number): Float32Array {
    if (n <= block) return draw.call(this, n, std);
    const first = draw.call(this, block, std), out = new Float32Array(n);
    for (let i = 0; i < n; i += block) out.set(n - i < block ? first.subarray(0, n - i) : first, i);
    return out;
  };
}

const median = (x: number[]) => [...x].sort((a, b) => a - b)[x.length >> 1];
const mib = (b: number) => `${fmtValue(b / 2 ** 20)} MiB`;

const o = options();
if (o.device === 'cuda' && !backends().includes('cuda')) throw new RangeError('mama_step: device cuda is not available');
// The emulated CUDA library (MAMAKIT_CUDA_LIB) runs the step on the CPU: a check of the path, never a timing.
const emulated = o.device === 'cuda' && cudaStatus().emulated;
if (emulated) console.log('  emulated CUDA library: no peer, nothing recorded; the figures are not timings');
const preset = mama.mamaPresets[o.preset] as mama.MamaConfig;
const cfg: mama.MamaConfig = { ...preset, vit: { ...preset.vit, imageSize: o.imageSize || preset.vit.imageSize } };
// MamaConfig.checkpoint, where the library has it, checkpoints the text encoder's blocks too.
Object.assign(cfg, { checkpoint: o.checkpoint === 'on' });
if (o.preset !== 'tiny') tileInitDraws(1 << 14);
const S = cfg.vit.imageSize, B = o.batch;
const name = `MaMA ${o.preset} step, ${B} studies × 2 views ${S}², ${o.device} ${o.precision}${o.checkpoint === 'on' ? ', checkpointed' : ''}`;
console.log(`  ${name}: ${o.warmup} warm-up + ${o.steps} timed steps each side${o.device === 'cuda' ? '' : `, best of ${o.rounds} alternating rounds`}`);

interface PeerResult { impl: string; seconds_per_step: number; peak_bytes: number; peak_what: string; params_total: number; params_trainable: number; error?: string; detail?: string }
const peerArgs = ['--preset', o.preset, '--batch', String(B), '--image-size', String(S), '--steps', String(o.steps), '--warmup', String(o.warmup),
  '--device', o.device, '--precision', o.precision, '--checkpoint', o.checkpoint, ...(o.device === 'cuda' ? ['--sdpa'] : [])];
let asking = o.peer === 'on' && !emulated;
// The peer's best run so far; it stops being asked once it is missing or fails.
let t = null as PeerResult | null;
const askPeer = () => {
  const p = asking ? (pythonPeer('mama_step.py', peerArgs) as PeerResult | null) : null;
  if (!p || p.error) {
    if (p?.error) console.log(`  torch: ${p.error} (${p.detail})`);
    asking = false;
  } else if (!t || p.seconds_per_step < t.seconds_per_step) t = p;
};

// On CUDA the peer runs once, first: it exits (and frees its memory) before ours allocates. On
// the CPU the two alternate, since this VM's speed moves by several times within a minute.
if (o.device === 'cuda') askPeer();
let r: { seconds: number; peakBytes: number; loss: number; total: number; trainable: number };
try {
  const side = ours(o, cfg);
  r = { ...side.time(), total: side.total, trainable: side.trainable };
  for (let i = 1; i < (o.device === 'cuda' ? 1 : o.rounds); i++) {
    askPeer();
    const again = side.time();
    if (again.seconds < r.seconds) Object.assign(r, again);
  }
  if (o.device !== 'cuda') askPeer();
} catch (e) {
  // One JSON line as mama_step.py prints it, so that bench/gpu.sh tells an out-of-memory batch.
  const detail = (e as Error).message.split('\n')[0];
  console.log(JSON.stringify({ impl: 'mamakit', batch: B, error: /out of (device )?memory/.test(detail) ? 'out of memory' : 'failed', detail }));
  process.exit(3);
}
console.log(`  mamakit: ${(r.seconds * 1e3).toFixed(0)} ms/step, ${fmtValue(B / r.seconds)} studies/s, ${fmtValue((2 * B) / r.seconds)} image forwards/s, peak ${mib(r.peakBytes)}, params ${r.total} (${r.trainable} trainable), loss ${r.loss.toFixed(4)}`);
if (t) {
  console.log(`  ${t.impl}: ${(t.seconds_per_step * 1e3).toFixed(0)} ms/step, ${fmtValue(B / t.seconds_per_step)} studies/s, peak ${mib(t.peak_bytes)} (${t.peak_what}), params ${t.params_total} (${t.params_trainable} trainable)`);
  console.log(`  ratio (ours over torch): speed ${(t.seconds_per_step / r.seconds).toFixed(2)}×, peak memory ${(r.peakBytes / t.peak_bytes).toFixed(2)}×`);
  if (t.params_total !== r.total || t.params_trainable !== r.trainable) {
    console.log(`  parameter counts differ: ours ${r.total}/${r.trainable}, torch ${t.params_total}/${t.params_trainable}`);
    process.exitCode = 1;
  }
}

const rec = new Recorder(import.meta.url);
const peakOurs = `peak ${mib(r.peakBytes)} (${o.device === 'cuda' ? 'device' : 'live tensors'})`;
const note = t
  ? `${peakOurs}, torch ${mib(t.peak_bytes)} (${o.device === 'cuda' ? 'max_memory_allocated' : 'max RSS less RSS before the model'}): ${(r.peakBytes / t.peak_bytes).toFixed(2)}×; ${r.total} parameters (${r.trainable} trainable)${t.params_total === r.total && t.params_trainable === r.trainable ? ' on both sides' : `, torch ${t.params_total} (${t.params_trainable})`}`
  : `${peakOurs}; ${r.total} parameters (${r.trainable} trainable)`;
rec.add(name, 'studies/s', B, { seconds: r.seconds, rme: 0 }, t ? { name: t.impl, seconds: t.seconds_per_step } : null, undefined, undefined, note);
if (!emulated) rec.save();
// The last line, for bench/gpu.sh: the keys mama_step.py prints.
console.log(JSON.stringify({ impl: 'mamakit', preset: o.preset, device: o.device, precision: o.precision, checkpoint: o.checkpoint, batch: B, image_size: S,
  seconds_per_step: r.seconds, studies_per_s: B / r.seconds, image_forwards_per_s: (2 * B) / r.seconds, peak_bytes: r.peakBytes, params_total: r.total, params_trainable: r.trainable, loss: r.loss }));
