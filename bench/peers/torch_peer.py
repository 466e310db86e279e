# torch_peer.py: the PyTorch side of mamakit's benches. Reads a JSON list of cases on stdin,
# times each on 2 threads (or on CUDA when a case says so) and prints a JSON list of
# {"seconds": mean per call}. Run by bench/harness.ts as /usr/bin/python3 torch_peer.py OP,
# or as torch_peer.py OP --serve to time one case per request line (comparePaired).
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


def _x(c, requires_grad=False):
    x = torch.randn(c["R"], c["D"], device=c.get("device", "cpu"))
    x.requires_grad_(requires_grad)
    return x


def layernorm(c):
    x, w, b = _x(c), torch.randn(c["D"]), torch.randn(c["D"])
    return lambda: torch.nn.functional.layer_norm(x, (c["D"],), w, b, 1e-5), "cpu"


def layernorm_bwd(c):
    x, w, b = _x(c, True), torch.randn(c["D"], requires_grad=True), torch.randn(c["D"], requires_grad=True)
    y = torch.nn.functional.layer_norm(x, (c["D"],), w, b, 1e-5)
    g = torch.randn_like(y)
    return lambda: torch.autograd.grad(y, (x, w, b), g, retain_graph=True), "cpu"


def gelu(c):
    x = _x(c)
    return lambda: torch.nn.functional.gelu(x, approximate=c.get("approximate", "none")), "cpu"


def gelu_bwd(c):
    x = _x(c, True)
    y = torch.nn.functional.gelu(x, approximate=c.get("approximate", "none"))
    g = torch.randn_like(y)
    return lambda: torch.autograd.grad(y, (x,), g, retain_graph=True), "cpu"


def adamw(c):
    p = torch.nn.Parameter(torch.randn(c["n"]))
    p.grad = torch.randn(c["n"])
    opt = torch.optim.AdamW([p], lr=1e-3, weight_decay=0.1)
    return opt.step, "cpu"


def copy(c):
    x, y = torch.randn(c["n"]), torch.empty(c["n"])
    return lambda: y.copy_(x), "cpu"


def patch_embed(c):
    """Conv2d (kernel = stride = p) + flatten + position add, with autograd for the backward."""
    dev = c.get("device", "cpu")
    dt = getattr(torch, {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}[c.get("dtype", "f32")])
    B, C, H, W, p, D = c["B"], c["C"], c["H"], c["W"], c["p"], c["D"]
    x = torch.randn(B, C, H, W, device=dev, dtype=dt)
    conv = torch.nn.Conv2d(C, D, p, p).to(device=dev, dtype=dt)
    pos = torch.randn(1, (H // p) * (W // p), D, device=dev, dtype=dt, requires_grad=True)

    def forward():
        return conv(x).flatten(2).transpose(1, 2) + pos

    if not c.get("bwd"):
        def fwd():
            with torch.no_grad():
                forward()
        return fwd, dev
    g = torch.randn(B, (H // p) * (W // p), D, device=dev, dtype=dt)

    def step():
        with torch.enable_grad():
            torch.autograd.grad(forward(), (conv.weight, conv.bias, pos), g)
    return step, dev


def attention(c):
    """softmax(scale·QKᵀ + mask)·V as a model without a fused kernel writes it, with autograd."""
    dev = c.get("device", "cpu")
    dt = getattr(torch, {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}[c.get("dtype", "f32")])
    B, L, H, Dh = c["B"], c["L"], c["H"], c["Dh"]
    q, k, v = (torch.randn(B, H, L, Dh, device=dev, dtype=dt, requires_grad=True) for _ in range(3))
    g = torch.randn(B, H, L, Dh, device=dev, dtype=dt)
    mask = torch.triu(torch.ones(L, L, dtype=torch.bool, device=dev), 1) if c.get("causal") else None
    p = c.get("dropout", 0.0)  # of the probabilities
    if c.get("sdpa"):  # the GPU peer: PyTorch's fused kernel
        forward = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=bool(c.get("causal")))
    else:
        def forward():
            s = (q @ k.transpose(-1, -2)) * Dh ** -0.5
            if mask is not None:
                s = s.masked_fill(mask, float("-inf"))
            return torch.nn.functional.dropout(s.softmax(-1), p) @ v
    if not c.get("bwd"):
        def fwd():
            with torch.no_grad():
                forward()
        return fwd, dev

    def step():
        with torch.enable_grad():
            torch.autograd.grad(forward(), (q, k, v), g)
    return step, dev


def local_align(c):
    """MaMA's local loss as the authors' code computes it: every B·B·S·P similarity materialised."""
    dev = c.get("device", "cpu")
    dt = getattr(torch, {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}[c.get("dtype", "f32")])
    B, P, S, E = c["B"], c["P"], c["S"], c["E"]
    F = torch.nn.functional
    patches = F.normalize(torch.randn(B, P, E, device=dev), dim=-1).to(dt).requires_grad_()
    sents = F.normalize(torch.randn(B, S, E, device=dev), dim=-1).to(dt).requires_grad_()
    counts = torch.tensor(c["counts"], device=dev)
    mask = torch.arange(S, device=dev)[None, :] < counts[:, None]  # [B, S] real sentences
    scale = torch.tensor(c.get("scale", 2.0), device=dev, requires_grad=True)
    labels = torch.arange(B, device=dev)

    def step():
        with torch.enable_grad():
            sim = torch.einsum("mje,nke->mnjk", sents, patches).float()  # [B, B, S, P]
            cv = (sim.max(-1).values * mask[:, None, :]).sum(-1) / counts[:, None]
            ct = sim.masked_fill(~mask[:, None, :, None], float("-inf")).max(-2).values.mean(-1)
            s = scale.exp()
            loss = (F.cross_entropy(s * cv, labels) + F.cross_entropy(s * cv.t(), labels)
                    + F.cross_entropy(s * ct, labels) + F.cross_entropy(s * ct.t(), labels))
            torch.autograd.grad(loss, (patches, sents, scale))
    return step, dev


def vit_step(c):
    """One training step (forward, backward, AdamW) of a DINOv2-style ViT with registers, the
    same architecture as lib/nn/vit.ts: pre-norm blocks, separate q/k/v, LayerScale, mean-pooled
    pre-norm tokens → Linear → L2 → symmetric InfoNCE against fixed text embeddings."""
    nn, F = torch.nn, torch.nn.functional
    B, S, p, C, D, depth, H, R, E = c["B"], c["size"], c["patch"], c["channels"], c["width"], c["depth"], c["heads"], c["registers"], c["E"]
    np_ = (S // p) ** 2

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(D, eps=1e-6), nn.LayerNorm(D, eps=1e-6)
            self.q, self.k, self.v, self.o = (nn.Linear(D, D) for _ in range(4))
            self.fc1, self.fc2 = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)
            self.ls1, self.ls2 = nn.Parameter(torch.full((D,), 1e-5)), nn.Parameter(torch.full((D,), 1e-5))

        def forward(self, x):
            h = self.norm1(x)
            sh = lambda t: t.view(B, -1, H, D // H).transpose(1, 2)
            a = F.scaled_dot_product_attention(sh(self.q(h)), sh(self.k(h)), sh(self.v(h))) if hasattr(F, "scaled_dot_product_attention") \
                else ((sh(self.q(h)) @ sh(self.k(h)).transpose(-1, -2)) * (D // H) ** -0.5).softmax(-1) @ sh(self.v(h))
            x = x + self.ls1 * self.o(a.transpose(1, 2).reshape(B, -1, D))
            return x + self.ls2 * self.fc2(F.gelu(self.fc1(self.norm2(x))))

    class Vit(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(C, D, p, p)
            self.cls, self.reg = nn.Parameter(torch.zeros(1, 1, D)), nn.Parameter(torch.zeros(1, R, D))
            self.pos = nn.Parameter(torch.randn(1, 1 + np_, D) * 0.02)
            self.blocks = nn.ModuleList(Block() for _ in range(depth))
            self.head = nn.Linear(D, E)
            self.scale = nn.Parameter(torch.tensor(2.659))

        def forward(self, x):
            t = self.patch(x).flatten(2).transpose(1, 2)
            t = torch.cat([self.cls.expand(B, -1, -1), t], 1) + self.pos
            t = torch.cat([t[:, :1], self.reg.expand(B, -1, -1), t[:, 1:]], 1)
            for b in self.blocks:
                t = b(t)
            return F.normalize(self.head(t.mean(1)), dim=-1)

    model = Vit()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    images = torch.randn(B, C, S, S)
    txt = F.normalize(torch.randn(B, E), dim=-1)
    labels = torch.arange(B)

    def step():
        with torch.enable_grad():
            opt.zero_grad()
            v = model(images)
            logits = model.scale.exp() * v @ txt.t()
            loss = F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)
            loss.backward()
            opt.step()
    return step, "cpu"


OPS = {"matmul": matmul, "layernorm": layernorm, "layernorm_bwd": layernorm_bwd, "gelu": gelu, "gelu_bwd": gelu_bwd, "adamw": adamw, "copy": copy,
       "patch_embed": patch_embed, "attention": attention,
       "local_align": local_align, "vit_step": vit_step}


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


def serve(op):
    """bench/harness.ts comparePaired: one request per line, {"case": …, "minTime": s}; answers
    {"seconds": mean per call} at once, so that the caller can alternate with its own timing."""
    fns = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        r = json.loads(line)
        key = json.dumps(r["case"], sort_keys=True)
        if key not in fns:
            fns[key] = OPS[op](r["case"])
        fn, dev = fns[key]
        print(json.dumps({"seconds": timeit(fn, dev, min_time=r["minTime"], min_reps=3)}), flush=True)


if __name__ == "__main__":
    op = sys.argv[1]
    if op == "jsonl":
        jsonl()
        sys.exit(0)
    if len(sys.argv) > 2 and sys.argv[2] == "--serve":
        serve(op)
        sys.exit(0)
    cases = json.load(sys.stdin)
    results = []
    for c in cases:
        fn, dev = OPS[op](c)
        results.append({"seconds": timeit(fn, dev)})
    print(json.dumps(results))
