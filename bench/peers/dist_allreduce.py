# dist_allreduce.py: the PyTorch side of bench/dist.bench.ts: one all_reduce (sum) of an f32
# tensor of MB megabytes with torch.distributed's gloo backend on 2 processes of this host (TCP
# over loopback), one thread each, timed as bench/dist_allreduce.ts times ours: one warm-up call,
# then the median of REPS calls, each after a barrier. Rank 0 prints {"seconds": median}.
# Run: /usr/bin/python3 dist_allreduce.py [MB=100] [REPS=10]
import datetime
import json
import os
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def rank_main(rank, size, store, mb, reps):
    torch.set_num_threads(1)
    # a file store: no port to pick; gloo's own connections go over loopback
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=size, timeout=datetime.timedelta(seconds=120))
    n = int(mb * 1e6) // 4
    t = torch.full((n,), float(rank + 1), dtype=torch.float32)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    ts = []
    for _ in range(reps):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        ts.append(time.perf_counter() - t0)
    want = size * (size + 1) / 2 * size**reps
    if t[0].item() != want:
        raise RuntimeError(f"element 0 = {t[0].item()}, expected {want}")
    if rank == 0:
        print(json.dumps({"seconds": sorted(ts)[len(ts) // 2]}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    mb = float(sys.argv[1]) if len(sys.argv) > 1 else 100
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(rank_main, args=(2, os.path.join(d, "store"), mb, reps), nprocs=2)
