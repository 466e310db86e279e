#!/usr/bin/env bash
# gpu.sh: the one script a lent GPU runs, in a single call of the device tool:
#   1. build the CUDA backend for sm_90 (+PTX) and the C++ checker with CMake (no Node needed);
#   2. check every CUDA op against the CPU backend (native/tests/backend_ops.cpp);
#   3. time the CUDA ops and the same ops in PyTorch on the same card;
#   4. run the Node test suite too when node and node_modules are there;
#   5. print a short table last; full figures and logs go to OUTDIR.
# Usage: bash bench/gpu.sh [OUTDIR]   (default: $OUT, else bench/out/gpu)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-bench/out/gpu}}
mkdir -p "$out"
status=0

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
echo "== build (sm_90)"
if ! { cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DMAMAKIT_CUDA_ARCHS=90 &&
       cmake --build build-gpu -j"$(nproc)"; } >"$out/build.log" 2>&1; then
  tail -40 "$out/build.log"
  echo "gpu.sh: build failed"
  exit 1
fi
grep -E "^-- CUDA" "$out/build.log"

echo "== checks: CUDA against CPU"
./build-gpu/backend_ops --lib build-gpu/libmamakit_cuda.so --bench "$out/ours.jsonl" >"$out/checks.txt" 2>&1 || status=1
grep -E "^(FAIL|device|bench)" "$out/checks.txt" | head -40
tail -1 "$out/checks.txt"

echo "== peer: PyTorch on the same card"
python3 bench/peers/torch_peer.py jsonl <"$out/ours.jsonl" >"$out/torch.jsonl" 2>"$out/torch.log" || { tail -5 "$out/torch.log"; status=1; }

if command -v node >/dev/null && [ -d node_modules ]; then
  echo "== node test suite with the GPU"
  npm test >"$out/npm-test.txt" 2>&1 || status=1
  tail -1 "$out/npm-test.txt"
else
  echo "== node test suite: skipped (no node or node_modules on this machine)"
fi

echo "== summary (also in $out/summary.md)"
python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def rows(name):
    p = os.path.join(out, name)
    return [json.loads(l) for l in open(p) if l.strip()] if os.path.exists(p) else []
ours, peer = rows("ours.jsonl"), rows("torch.jsonl")
key = lambda r: (r["op"], r["dtype"], r.get("M"), r.get("N"), r.get("K"), r.get("case", ""))
pk = {key(r): r for r in peer}
lines = ["| op | dtype | shape | mamakit TFLOP/s | torch TFLOP/s | ratio |", "|---|---|---|---|---|---|"]
for r in ours:
    shape = r.get("case") or f'{r["M"]}x{r["N"]}x{r["K"]}'
    t = r["flops"] / r["seconds"] / 1e12
    p = pk.get(key(r))
    pt = p["flops"] / p["seconds"] / 1e12 if p else None
    lines.append(f'| {r["op"]} | {r["dtype"]} | {shape} | {t:.1f} | {pt:.1f} | {t/pt:.2f}x |' if p else f'| {r["op"]} | {r["dtype"]} | {shape} | {t:.1f} | - | - |')
text = "\n".join(lines)
open(os.path.join(out, "summary.md"), "w").write(text + "\n")
print(text)
PY
exit $status
