#!/usr/bin/env bash
# gpu.sh: the one script a GPU runs, in a single call of the device tool (about 7 of its 9 minutes):
#   0. Node: where the machine has none, unpack .gpu-kit/node-kit.tar.xz (made here by
#      `node scripts/pack-node-kit.mjs`; the call carries .gpu-kit): Node, the dependencies, dist/;
#   1. build the addon and the CUDA backend for sm_90 (cmake-js, nvcc) and the op test;
#   2. the cross-backend op test on the real library, then its timings (native/tests/backend_ops);
#   3. the Node tests of the kernels and of CUDA on the GPU (`npm test -- kernels cuda`: the op
#      cases, the CPU-vs-CUDA training parity, resume, the traffic count, pretrain --device cuda);
#   4. the default tiny pre-training (`npm run pretrain`) for 40 steps on the GPU, then on the
#      CPU of the same machine: samples/s of each;
#   4b. NCCL, where the machine has mpirun: test/dist's collectives (the real-NCCL case on one
#      rank per GPU) and 2 pre-training steps on 1 rank under mpirun, with the machine's
#      libnccl.so.2 or PyTorch's (MAMAKIT_NCCL_LIB names another);
#   5. the same ops timed in PyTorch on the same card (the op test's timings include the ViT-B
#      GEMMs and attention at batch 36 × 2 views in bf16);
#   6. one MaMA micro-batch step at the base preset (bf16, checkpointing) in mamakit, then in
#      PyTorch (bench/peers/mama_step.py): batch 36, else 16 where 36 runs out of memory;
#   7. short tables last; every log and figure under OUTDIR.
# Usage: bash bench/gpu.sh [OUTDIR]   (default: $OUT, else bench/out/gpu)
#   device tool: node scripts/pack-node-kit.mjs here, then run { command: 'bash bench/gpu.sh',
#                carry: ['.gpu-kit'], timeout_s: 540 }
#   your own GPU machine: npm install, then bash bench/gpu.sh out (no kit needed)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-bench/out/gpu}}
mkdir -p "$out"
status=0
start=$SECONDS
step() { echo "== $1 ($((SECONDS - start)) s)"; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
if ! node --version >/dev/null 2>&1; then
  if [ ! -f .gpu-kit/node-kit.tar.xz ]; then
    echo "gpu.sh: no node here and no .gpu-kit/node-kit.tar.xz (make it with node scripts/pack-node-kit.mjs; carry .gpu-kit)"
    exit 1
  fi
  step "unpack Node, the dependencies and dist/ (.gpu-kit/node-kit.tar.xz)"
  tar -xJf .gpu-kit/node-kit.tar.xz -C . || exit 1
  export PATH="$PWD/.gpu-kit/bin:$PATH"
fi
echo "node $(node --version)"

step "build: addon and CUDA backend for sm_90 (cmake-js, nvcc), op test"
if ! { node node_modules/cmake-js/bin/cmake-js compile --CDMAMAKIT_CUDA_ARCHS=90 && node scripts/build-cuda-emu.mjs; } >"$out/build.log" 2>&1; then
  tail -40 "$out/build.log"
  echo "gpu.sh: build failed"
  exit 1
fi
grep -E "^-- CUDA" "$out/build.log"

step "op test: every CUDA table entry against the CPU, then timings"
./build/Release/backend_ops --lib build/Release/libmamakit_cuda.so --bench "$out/ours.jsonl" >"$out/checks.txt" 2>&1 || status=1
grep -E "^(FAIL|device|table|bench)" "$out/checks.txt" | head -40
tail -1 "$out/checks.txt"

step "Node tests on the GPU (npm test -- kernels cuda)"
node scripts/test.mjs --no-build kernels cuda >"$out/node-tests.txt" 2>&1 || status=1
grep -E "^CUDA tests|FAIL|TIMEOUT" "$out/node-tests.txt" | head -20
tail -1 "$out/node-tests.txt"

step "pre-training: the default tiny MaMA, 40 steps on the GPU, then on this machine's CPU"
for dev in cuda cpu; do
  node dist/lib/cli/main.js pretrain --device "$dev" --steps 40 --no-eval --data "$out/synth" --out "$out/pretrain-$dev" \
    >"$out/pretrain-$dev.txt" 2>&1 || status=1
  echo "$dev: $(grep -oE '[0-9.]+ samples/s' "$out/pretrain-$dev.txt" | tail -1)"
done

step "NCCL: test/dist's collectives and 2 pre-training steps on 1 rank under mpirun"
nccl=${MAMAKIT_NCCL_LIB:-$(ldconfig -p 2>/dev/null | awk '/libnccl\.so\.2 /{print $NF; exit}')}
if [ -z "$nccl" ]; then
  # PyTorch's wheels bring NCCL (nvidia/nccl/lib, or torch/lib in older ones).
  nccl=$(python3 -c "import glob, os, site, torch; d = site.getsitepackages() + [os.path.dirname(torch.__file__)]; h = [p for x in d for p in glob.glob(os.path.join(x, '**', 'libnccl.so.2'), recursive=True)]; print(h[0] if h else '')" 2>/dev/null)
fi
if ! command -v mpirun >/dev/null 2>&1; then
  echo "NCCL: not run (no mpirun on this machine; NCCL's unique id goes over MPI)"
elif [ -z "$nccl" ]; then
  echo "NCCL: not run (no libnccl.so.2 found; set MAMAKIT_NCCL_LIB)"
else
  echo "NCCL library: $nccl"
  MAMAKIT_NCCL_LIB="$nccl" node scripts/test.mjs --no-build --timeout 120 dist/dist >"$out/nccl-tests.txt" 2>&1 || status=1
  grep -E "NCCL|FAIL|TIMEOUT" "$out/nccl-tests.txt" | head -8
  tail -1 "$out/nccl-tests.txt"
  MAMAKIT_NCCL_LIB="$nccl" timeout 120 mpirun --allow-run-as-root -np 1 node dist/lib/cli/main.js pretrain --device cuda --steps 2 --no-eval \
    --eval-every 0 --data "$out/synth" --out "$out/pretrain-nccl" >"$out/pretrain-nccl.txt" 2>&1 || status=1
  grep -E "ranks|^done|Error" "$out/pretrain-nccl.txt" | head -4
fi

step "peer: PyTorch on the same card"
if [ -s "$out/ours.jsonl" ]; then
  python3 bench/peers/torch_peer.py jsonl <"$out/ours.jsonl" >"$out/torch.jsonl" 2>"$out/torch.log" || { tail -5 "$out/torch.log"; status=1; }
fi

step "MaMA step: base preset, bf16, checkpointing; mamakit, then PyTorch (batch 36, else 16)"
# IMPL BATCH → $out/mama-IMPL-BATCH.txt, whose last line is the JSON of both step benches; each
# side gets what is left of the script's 520 s, at most 200 s.
mama_step() {
  local left=$((520 - (SECONDS - start))) args=(--preset base --device cuda --precision bf16 --checkpoint on --batch "$2" --steps 3 --warmup 1)
  [ $left -gt 200 ] && left=200
  if [ $left -lt 60 ]; then echo "$1: skipped at batch $2 (${left} s left)"; return 1; fi
  if [ "$1" = mamakit ]; then timeout $left node dist/bench/mama_step.bench.js "${args[@]}" --peer off
  else timeout $left python3 bench/peers/mama_step.py "${args[@]}" --sdpa; fi >"$out/mama-$1-$2.txt" 2>&1
}
# Out of memory is a finding, not a failure: the next batch is tried.
oom() { grep -q '"out of memory"' "$out/mama-$1-$2.txt" 2>/dev/null && echo "$1: batch $2 out of memory"; }
ours_batch=
for b in 36 16; do
  mama_step mamakit $b && { ours_batch=$b; echo "mamakit: batch $b ran"; break; }
  oom mamakit $b || { tail -3 "$out/mama-mamakit-$b.txt" 2>/dev/null; status=1; break; }
done
# PyTorch at 36, and at ours' batch too where only a smaller one ran (the ratio compares one batch).
for b in 36 16; do
  if mama_step torch $b; then
    echo "torch: batch $b ran"
    [ "$ours_batch" = 16 ] && [ $b = 36 ] || break
  else
    oom torch $b || { tail -3 "$out/mama-torch-$b.txt" 2>/dev/null; status=1; break; }
  fi
done

step "summary (also in $out/summary.md)"
python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def rows(name):
    p = os.path.join(out, name)
    return [json.loads(l) for l in open(p) if l.strip()] if os.path.exists(p) else []
ours, peer = rows("ours.jsonl"), rows("torch.jsonl")
key = lambda r: (r["op"], r["dtype"], r.get("case", ""))
pk = {key(r): r for r in peer}
lines = ["| op | dtype | case | mamakit TFLOP/s | torch TFLOP/s | ratio |", "|---|---|---|---|---|---|"]
for r in ours:
    t = r["flops"] / r["seconds"] / 1e12
    p = pk.get(key(r))
    pt = p["flops"] / p["seconds"] / 1e12 if p else None
    lines.append(f'| {r["op"]} | {r["dtype"]} | {r["case"]} | {t:.1f} | {pt:.1f} | {t/pt:.2f}x |' if p else f'| {r["op"]} | {r["dtype"]} | {r["case"]} | {t:.1f} | - | - |')
def last_json(name):
    try:
        r = json.loads(open(os.path.join(out, name)).read().strip().split("\n")[-1])
        return r if isinstance(r, dict) else None
    except (OSError, ValueError, IndexError):
        return None
lines += ["", "| MaMA base step, bf16, checkpointing | batch | s/step | studies/s | image forwards/s | peak GiB | parameters (trainable) |", "|---|---|---|---|---|---|---|"]
ran = {}
for impl in ("mamakit", "torch"):
    for b in (36, 16):
        r = last_json(f"mama-{impl}-{b}.txt")
        if r is None:
            continue
        if r.get("error"):
            lines.append(f'| {impl} | {b} | {r["error"]} | | | | |')
            continue
        ran[impl, b] = r
        lines.append(f'| {r["impl"]} | {b} | {r["seconds_per_step"]:.3f} | {r["studies_per_s"]:.1f} | {r["image_forwards_per_s"]:.1f} | {r["peak_bytes"] / 2**30:.1f} | {r["params_total"]} ({r["params_trainable"]}) |')
for b in (36, 16):
    m, t = ran.get(("mamakit", b)), ran.get(("torch", b))
    if m and t:
        same = (m["params_total"], m["params_trainable"]) == (t["params_total"], t["params_trainable"])
        lines.append(f'| ratio mamakit/torch | {b} | | {m["studies_per_s"] / t["studies_per_s"]:.2f}x speed | | {m["peak_bytes"] / t["peak_bytes"]:.2f}x memory | {"same" if same else "DIFFER"} |')
        break
text = "\n".join(lines)
open(os.path.join(out, "summary.md"), "w").write(text + "\n")
print(text)
PY
echo "gpu.sh: $((SECONDS - start)) s, status $status"
exit $status
