// harness.ts: what every bench file uses: time a case with benchmark.js, time the same case
// in a peer (Debian's PyTorch on 2 threads, in its own process), print the ratio, and leave
// the rows in bench/out/<bench>.json for scripts/bench.mjs to merge into bench/RESULTS.md.
import Benchmark from 'benchmark';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Row {
  bench: string;
  case: string;
  impl: string;
  /** mean seconds per call */
  seconds: number;
  /** ± relative margin of error (95 %) in percent, when measured by benchmark.js */
  rme?: number;
  /** 'GFLOP/s' | 'GB/s' | 'Mcalls/s' */
  unit: string;
  /** throughput in `unit` */
  value: number;
  /** ours / peer throughput, on our row */
  ratio?: number;
  peer?: string;
  /** memory-bound kernels: the fraction of the copy bandwidth (64 MiB, beyond the caches)
   *  measured in the same run */
  ofCopy?: number;
  /** the same against a copy of the kernel's own bytes (in cache for small cases) */
  ofCopySameSize?: number;
  /** compute-bound kernels: the fraction of our GEMM rate measured in the same run */
  ofGemm?: number;
  /** comparePaired: the lowest and highest of the paired ratios whose median is `ratio` */
  ratioRange?: [number, number];
  /** comparePaired: how many alternating pairs the ratio is the median of */
  pairs?: number;
  /** comparePaired: best time of each side over the pairs, as a ratio */
  bestRatio?: number;
  /** what else the case measured (peak memory, parameter counts), shown in RESULTS.md */
  note?: string;
}

/** Times fn with benchmark.js. */
export function measure(name: string, fn: () => void, opts: { maxTime?: number; minSamples?: number } = {}): { seconds: number; rme: number } {
  const b = new Benchmark(name, fn, { maxTime: opts.maxTime ?? 2, minSamples: opts.minSamples ?? 5, initCount: 1 });
  b.run({ async: false });
  if (b.error) throw b.error;
  return { seconds: b.stats.mean, rme: b.stats.rme };
}

export interface PeerResult {
  seconds: number;
}

/**
 * The python3 the peers run under (MAMAKIT_PYTHON, else Debian's /usr/bin/python3), or null (and
 * says why) when it is missing. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for that
 * process only: they slow a current OpenBLAS here.
 */
function python(): { cmd: string; env: NodeJS.ProcessEnv } | null {
  const cmd = process.env.MAMAKIT_PYTHON || '/usr/bin/python3';
  if (!existsSync(cmd)) {
    console.log(`  peer unavailable: ${cmd} not found`);
    return null;
  }
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return { cmd, env };
}

/** How to run bench/peers/torch_peer.py OP (extra arguments after OP), or null when python3 is missing. */
function peerProcess(op: string, ...extra: string[]): { cmd: string; args: string[]; env: NodeJS.ProcessEnv } | null {
  const p = python();
  return p && { ...p, args: [join(root, 'bench', 'peers', 'torch_peer.py'), op, ...extra] };
}

/**
 * Runs bench/peers/SCRIPT with args and returns the JSON of its last stdout line, or null (and
 * says why) when python3 or torch is missing or the script printed nothing it could parse.
 */
export function pythonPeer(script: string, args: string[]): Record<string, unknown> | null {
  const p = python();
  if (!p) return null;
  const r = spawnSync(p.cmd, [join(root, 'bench', 'peers', script), ...args], { env: p.env, encoding: 'utf8', maxBuffer: 16 << 20 });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  } catch {
    console.log(`  peer unavailable: ${(r.stderr || r.stdout || `exit status ${r.status}`).trim().split('\n').pop()}`);
    return null;
  }
}

/** Times the cases in torch_peer.py; null (and says why) when python3-torch is missing. */
export function torchPeer(op: string, cases: object[]): Array<PeerResult | null> | null {
  const p = peerProcess(op);
  if (!p) return null;
  const r = spawnSync(p.cmd, p.args, { input: JSON.stringify(cases), env: p.env, encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) {
    console.log(`  peer unavailable: ${(r.stderr || r.stdout || '').trim().split('\n').pop()}`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

export interface Round<C> {
  cases: C[];
  /** the peer's name, its op in torch_peer.py and how a case is sent to it */
  peer?: { name: string; op: string; arg: (c: C) => object };
  ours: (c: C) => { seconds: number; rme: number };
  /** alternate peer and ours this many times and keep each side's best (default 3) */
  rounds?: number;
}

/**
 * Times every case against the peer in alternating rounds and keeps the best of each side:
 * this VM's speed drifts by ±20 % over seconds (other tenants), and the best of interleaved
 * runs compares both sides under the same conditions.
 */
export function compareRounds<C>(r: Round<C>): Array<{ ours: { seconds: number; rme: number }; peer: number | null }> {
  const best = r.cases.map(() => ({ ours: { seconds: Infinity, rme: 0 }, peer: null as number | null }));
  for (let round = 0; round < (r.rounds ?? 3); round++) {
    const p = r.peer ? torchPeer(r.peer.op, r.cases.map(r.peer.arg)) : null;
    r.cases.forEach((c, i) => {
      const t = r.ours(c);
      if (t.seconds < best[i].ours.seconds) best[i].ours = t;
      const ps = p?.[i]?.seconds;
      if (ps != null && (best[i].peer == null || ps < best[i].peer!)) best[i].peer = ps;
    });
  }
  return best;
}

/** Mean seconds per call of fn over at least minTime seconds and 3 calls, after one warm-up call. */
export function timeLoop(fn: () => void, minTime: number): number {
  fn();
  let n = 0;
  const t0 = performance.now();
  let elapsed = 0;
  do {
    fn();
    n++;
    elapsed = (performance.now() - t0) / 1000;
  } while (elapsed < minTime || n < 3);
  return elapsed / n;
}

export interface PairedResult {
  /** median seconds per call of each side over the pairs */
  ours: number;
  peer: number | null;
  /** median, lowest and highest of peer/ours seconds over the pairs (ours over peer throughput) */
  ratio: number | null;
  range: [number, number] | null;
  /** the best time of each side over the pairs, as a ratio (what compareRounds reports) */
  bestRatio: number | null;
  pairs: number;
}

const median = (x: number[]) => {
  const s = [...x].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Times every case against a peer kept running in its own process (torch_peer.py --serve),
 * alternating the two every `minTime` seconds (which side goes first alternates too), and
 * returns the median of the paired ratios. This VM's speed moves by ±15 % within seconds;
 * a pair is measured under the same conditions, so the median of many pairs is a steadier
 * ratio than the best of a few rounds of each side taken seconds apart.
 */
export async function comparePaired<C>(r: { cases: C[]; peer: { op: string; arg: (c: C) => object }; ours: (c: C, minTime: number) => number; pairs?: number; minTime?: number }): Promise<PairedResult[]> {
  const pairs = r.pairs ?? 9, minTime = r.minTime ?? 0.3;
  let ask: ((c: C) => Promise<number>) | null = null;
  let close = () => {};
  const p = peerProcess(r.peer.op, '--serve');
  if (p) {
    const child = spawn(p.cmd, p.args, { env: p.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    ask = async (c) => {
      child.stdin.write(JSON.stringify({ case: r.peer.arg(c), minTime }) + '\n');
      const next = await lines.next();
      if (next.done) throw new Error(`peer exited: ${stderr.trim().split('\n').pop()}`);
      return JSON.parse(next.value).seconds;
    };
    close = () => child.stdin.end();
  }
  try {
    if (ask) await ask(r.cases[0]);  // python and torch start-up, outside any pair
  } catch (e) {
    console.log(`  peer unavailable: ${(e as Error).message}`);
    ask = null;
  }
  const out: PairedResult[] = [];
  try {
    for (const c of r.cases) {
      const ours: number[] = [], peer: number[] = [];
      for (let i = 0; i < pairs; i++) {
        if (ask && i % 2) peer.push(await ask(c));
        ours.push(r.ours(c, minTime));
        if (ask && !(i % 2)) peer.push(await ask(c));
      }
      const ratios = peer.map((p, i) => p / ours[i]);
      out.push({
        ours: median(ours),
        peer: ask ? median(peer) : null,
        ratio: ask ? median(ratios) : null,
        range: ask ? [Math.min(...ratios), Math.max(...ratios)] : null,
        bestRatio: ask ? Math.min(...peer) / Math.min(...ours) : null,
        pairs: ask ? pairs : 0,
      });
    }
  } finally {
    close();
  }
  return out;
}

/** A memory-bound kernel's GB/s as fractions of copy bandwidths (bench/membound.ts). */
export interface CopyFractions {
  /** over the memory copy's (64 MiB, beyond the caches) */
  memory: number;
  /** over a copy of the kernel's own number of bytes */
  sameSize: number;
}

/** Throughput in `unit` of `work` done in `seconds`: GFLOP/s and GB/s count work (in units of
 *  1e9), studies/s counts it as is, Mcalls/s and steps/s count calls. */
export function throughput(unit: string, work: number, seconds: number): number {
  return unit === 'GFLOP/s' || unit === 'GB/s' ? work / seconds / 1e9 : unit === 'studies/s' ? work / seconds : unit === 'Mcalls/s' ? 1e-6 / seconds : 1 / seconds;
}

/** A figure with three significant digits, or none after the point from 100 on. */
export function fmtValue(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toPrecision(3);
}

/** "81 % of copy (23 % of same-size copy)"; one figure when the two copies are the same. */
export function copyCell(memory: number, sameSize?: number): string {
  const pct = (x: number) => `${(100 * x).toFixed(0)} %`;
  return sameSize == null || Math.abs(sameSize - memory) < 0.05 * memory ? `${pct(memory)} of copy` : `${pct(memory)} of copy (${pct(sameSize)} of same-size copy)`;
}

/** Collects rows, prints a table as it goes, and writes bench/out/<bench>.json at the end. */
export class Recorder {
  readonly rows: Row[] = [];
  readonly bench: string;
  constructor(importMetaUrl: string) {
    this.bench = basename(fileURLToPath(importMetaUrl)).replace(/\.bench\.js$/, '');
  }

  /** Records ours and (optionally) the peer's timing of one case; work = FLOPs or bytes; rme
   *  left out where ours is not timed by benchmark.js (a median of timed calls). */
  add(caseName: string, unit: string, work: number, ours: { seconds: number; rme?: number }, peer?: { name: string; seconds: number } | null, ofCopy?: CopyFractions, ofGemm?: number, note?: string): void {
    const tput = (s: number) => throughput(unit, work, s);
    const row: Row = { bench: this.bench, case: caseName, impl: 'mamakit', seconds: ours.seconds, rme: ours.rme, unit, value: tput(ours.seconds), ofCopy: ofCopy?.memory, ofCopySameSize: ofCopy?.sameSize, ofGemm, note };
    if (peer) {
      row.peer = peer.name;
      row.ratio = tput(ours.seconds) / tput(peer.seconds);
      this.rows.push(row, { bench: this.bench, case: caseName, impl: peer.name, seconds: peer.seconds, unit, value: tput(peer.seconds) });
    } else {
      this.rows.push(row);
    }
    const peerText = peer ? `  ${peer.name} ${fmtValue(tput(peer.seconds))} ${unit}  ratio ${row.ratio!.toFixed(2)}×` : '';
    const copyText = ofCopy != null ? `  (${copyCell(ofCopy.memory, ofCopy.sameSize)})` : ofGemm != null ? `  (${(100 * ofGemm).toFixed(0)} % of GEMM)` : '';
    console.log(`  ${caseName.padEnd(44)} ${fmtValue(row.value).padStart(8)} ${unit}${ours.rme != null ? ` ±${ours.rme.toFixed(1)}%` : ''}${peerText}${copyText}`);
  }

  /** Records a comparePaired result: each side's median throughput and the median paired ratio. */
  addPaired(caseName: string, unit: string, work: number, p: PairedResult, peerName: string): void {
    const tput = (sec: number) => throughput(unit, work, sec);
    const row: Row = { bench: this.bench, case: caseName, impl: 'mamakit', seconds: p.ours, unit, value: tput(p.ours) };
    this.rows.push(row);
    let peerText = '';
    if (p.peer != null && p.ratio != null && p.range) {
      Object.assign(row, { peer: peerName, ratio: p.ratio, ratioRange: p.range, bestRatio: p.bestRatio, pairs: p.pairs });
      this.rows.push({ bench: this.bench, case: caseName, impl: peerName, seconds: p.peer, unit, value: tput(p.peer) });
      peerText = `  ${peerName} ${fmtValue(tput(p.peer))} ${unit}  ratio ${p.ratio.toFixed(2)}× (pairs ${p.range[0].toFixed(2)}–${p.range[1].toFixed(2)}; best/best ${p.bestRatio!.toFixed(2)}×)`;
    }
    console.log(`  ${caseName.padEnd(44)} ${fmtValue(row.value).padStart(8)} ${unit}${peerText}`);
  }

  save(): void {
    const dir = join(root, 'bench', 'out');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${this.bench}.json`), JSON.stringify(this.rows, null, 1));
  }
}
