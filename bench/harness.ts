// harness.ts: what every bench file uses: time a case with benchmark.js, time the same case
// in a peer (Debian's PyTorch on 2 threads, in its own process), print the ratio, and leave
// the rows in bench/out/<bench>.json for scripts/bench.mjs to merge into bench/RESULTS.md.
import Benchmark from 'benchmark';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
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
 * Runs bench/peers/torch_peer.py with Debian's python3 on the given cases; returns null (and
 * says why) when python3-torch is missing. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset
 * for that process only: they slow a current OpenBLAS here.
 */
export function torchPeer(op: string, cases: object[]): Array<PeerResult | null> | null {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) {
    console.log(`  peer unavailable: ${py} not found`);
    return null;
  }
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync(py, [join(root, 'bench', 'peers', 'torch_peer.py'), op], { input: JSON.stringify(cases), env, encoding: 'utf8', maxBuffer: 16 << 20 });
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

/** A memory-bound kernel's GB/s as fractions of copy bandwidths (bench/membound.ts). */
export interface CopyFractions {
  /** over the memory copy's (64 MiB, beyond the caches) */
  memory: number;
  /** over a copy of the kernel's own number of bytes */
  sameSize: number;
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

  /** Records ours and (optionally) the peer's timing of one case; work = FLOPs or bytes. */
  add(caseName: string, unit: string, work: number, ours: { seconds: number; rme: number }, peer?: { name: string; seconds: number } | null, ofCopy?: CopyFractions, ofGemm?: number): void {
    // GFLOP/s and GB/s count work per second; Mcalls/s, steps/s, images/s … count calls.
    const tput = (s: number) => (unit === 'GFLOP/s' || unit === 'GB/s' ? work / s / 1e9 : unit === 'Mcalls/s' ? 1e-6 / s : 1 / s);
    const row: Row = { bench: this.bench, case: caseName, impl: 'mamakit', seconds: ours.seconds, rme: ours.rme, unit, value: tput(ours.seconds), ofCopy: ofCopy?.memory, ofCopySameSize: ofCopy?.sameSize, ofGemm };
    if (peer) {
      row.peer = peer.name;
      row.ratio = tput(ours.seconds) / tput(peer.seconds);
      this.rows.push(row, { bench: this.bench, case: caseName, impl: peer.name, seconds: peer.seconds, unit, value: tput(peer.seconds) });
    } else {
      this.rows.push(row);
    }
    const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v.toPrecision(3));
    const peerText = peer ? `  ${peer.name} ${fmt(tput(peer.seconds))} ${unit}  ratio ${row.ratio!.toFixed(2)}×` : '';
    const copyText = ofCopy != null ? `  (${copyCell(ofCopy.memory, ofCopy.sameSize)})` : ofGemm != null ? `  (${(100 * ofGemm).toFixed(0)} % of GEMM)` : '';
    console.log(`  ${caseName.padEnd(44)} ${fmt(row.value).padStart(8)} ${unit} ±${ours.rme.toFixed(1)}%${peerText}${copyText}`);
  }

  save(): void {
    const dir = join(root, 'bench', 'out');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${this.bench}.json`), JSON.stringify(this.rows, null, 1));
  }
}
