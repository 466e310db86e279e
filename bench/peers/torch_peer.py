# torch_peer.py: the PyTorch side of mamakit's benches. Reads a JSON list of cases on stdin,
# times each on 2 threads (or on CUDA when a case says so) and prints a JSON list of
# {"seconds": mean per call}. Run by bench/harness.ts as /usr/bin/python3 torch_peer.py OP.
import json
import sys
import time

import torch

torch.set_num_threads(2)
torch.manual_seed(0)


def timeit(fn, device, min_time=1.0, min_reps=5):
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(2):
        fn()
    sync()
    reps, total = 0, 0.0
    while total < min_time or reps < min_reps:
        t = time.perf_counter()
        fn()
        sync()
        total += time.perf_counter() - t
        reps += 1
    return total / reps


def matmul(c):
    dev, dt = c.get("device", "cpu"), getattr(torch, {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}[c.get("dtype", "f32")])
    M, N, K = c["M"], c["N"], c["K"]
    a = torch.randn(K, M, device=dev, dtype=dt) if c.get("transA") else torch.randn(M, K, device=dev, dtype=dt)
    b = torch.randn(N, K, device=dev, dtype=dt) if c.get("transB") else torch.randn(K, N, device=dev, dtype=dt)
    out = torch.empty(M, N, device=dev, dtype=dt)
    A = a.t() if c.get("transA") else a
    B = b.t() if c.get("transB") else b
    return lambda: torch.matmul(A, B, out=out), dev


OPS = {"matmul": matmul}


def jsonl():
    """bench/gpu.sh: times on CUDA each row that backend_ops wrote; same keys, torch's seconds."""
    with torch.no_grad():
        for line in sys.stdin:
            if not line.strip():
                continue
            r = json.loads(line)
            fn, dev = OPS[r["op"]](dict(r, device="cuda"))
            r["seconds"] = timeit(fn, dev)
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    op = sys.argv[1]
    if op == "jsonl":
        jsonl()
        sys.exit(0)
    cases = json.load(sys.stdin)
    results = []
    with torch.no_grad():
        for c in cases:
            fn, dev = OPS[op](c)
            results.append({"seconds": timeit(fn, dev)})
    print(json.dumps(results))
