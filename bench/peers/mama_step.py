# mama_step.py: one MaMA pre-training micro-batch step in PyTorch (both views through the ViT,
# the text through GPT-2 with LoRA, the four loss terms, backward, clipping, AdamW): the peer of
# bench/mama_step.bench.ts, built from MAMA.md §2–3 and lib/mama/model.ts, same sizes as
# mamaPresets. Random weights and synthetic inputs; prints one JSON line.
#   python3 bench/peers/mama_step.py --preset tiny --batch 4 --steps 5
#   python3 bench/peers/mama_step.py --device cuda --preset base --precision bf16 --checkpoint on --sdpa --batch 36
import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as torch_checkpoint

# mamaPresets (lib/mama/model.ts) with vitPresets (lib/nn/vit.ts) and gpt2Presets (lib/nn/gpt2.ts).
PRESETS = {
    "tiny": dict(
        vit=dict(image_size=112, patch=16, channels=1, width=192, depth=4, heads=3, mlp_ratio=4, registers=4, layer_scale=1e-5, eps=1e-6),
        text=dict(vocab=788, positions=144, width=128, depth=2, heads=4, eps=1e-5, scale_by_layer=True),
        lora=None, embed=128, local_hidden=256, simclr_out=128, max_tokens=144, max_sentences=12),
    "base": dict(
        vit=dict(image_size=518, patch=14, channels=3, width=768, depth=12, heads=12, mlp_ratio=4, registers=4, layer_scale=1e-5, eps=1e-6),
        text=dict(vocab=28896 + 6, positions=1024, width=2560, depth=32, heads=20, eps=1e-5, scale_by_layer=True),
        lora=dict(rank=8, alpha=32, dropout=0.1), embed=512, local_hidden=2048, simclr_out=512, max_tokens=144, max_sentences=12),
}


def tn(shape, std):
    """A parameter drawn as lib/nn/module.ts InitRng.truncNormal draws: N(0, std²) cut at ±2σ."""
    return nn.Parameter(nn.init.trunc_normal_(torch.empty(shape), std=std, a=-2 * std, b=2 * std))


def init_like_ours(model):
    """Linear, Conv2d and Embedding weights as the project draws them (std 0.02, biases 0):
    PyTorch's defaults (N(0, 1) embeddings) would train at another pace and hide a mismatch."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Embedding)):
            nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


def attend(q, k, v, heads, sdpa, q_scale=1.0, mask=None):
    """Multi-head attention over [B, L, D] projections; mask [B, 1, L, L] True where a query may
    look. q_scale multiplies the logits besides 1/√Dh (BioMedLM's 1/(l+1))."""
    B, L, D = q.shape
    split = lambda t: t.view(B, L, heads, D // heads).transpose(1, 2)
    q, k, v = split(q * q_scale if q_scale != 1 else q), split(k), split(v)
    if sdpa:
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    else:
        s = (q @ k.transpose(-1, -2)) * (D // heads) ** -0.5
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        o = s.softmax(-1) @ v
    return o.transpose(1, 2).reshape(B, L, D)


class VitBlock(nn.Module):
    """Pre-norm DINOv2 block: separate q/k/v (lib/nn/layers.ts SelfAttention), LayerScale, GELU MLP."""

    def __init__(self, c, sdpa):
        super().__init__()
        D, self.heads, self.sdpa = c["width"], c["heads"], sdpa
        self.norm1, self.norm2 = nn.LayerNorm(D, eps=c["eps"]), nn.LayerNorm(D, eps=c["eps"])
        self.query, self.key, self.value, self.dense = (nn.Linear(D, D) for _ in range(4))
        self.ls1, self.ls2 = (nn.Parameter(torch.full((D,), c["layer_scale"])) for _ in range(2))
        self.fc1, self.fc2 = nn.Linear(D, D * c["mlp_ratio"]), nn.Linear(D * c["mlp_ratio"], D)

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.ls1 * self.dense(attend(self.query(h), self.key(h), self.value(h), self.heads, self.sdpa))
        return x + self.ls2 * self.fc2(F.gelu(self.fc1(self.norm2(x))))


def run_blocks(blocks, x, ckpt, *args):
    for b in blocks:
        x = torch_checkpoint(b, x, *args, use_reentrant=False) if ckpt else b(x, *args)
    return x


class Vit(nn.Module):
    """DINOv2 with registers: tokens CLS, registers, patches; the position embedding is added to
    CLS and patches before the registers go in. Returns (last block output, its patch tokens
    after the final LayerNorm)."""

    def __init__(self, c, sdpa, ckpt):
        super().__init__()
        D, g, self.R, self.ckpt = c["width"], c["image_size"] // c["patch"], c["registers"], ckpt
        self.patch = nn.Conv2d(c["channels"], D, c["patch"], c["patch"])
        self.cls, self.reg, self.pos = tn((1, 1, D), 1e-6), tn((1, self.R, D), 1e-6), tn((1, 1 + g * g, D), 0.02)
        self.blocks = nn.ModuleList(VitBlock(c, sdpa) for _ in range(c["depth"]))
        self.norm = nn.LayerNorm(D, eps=c["eps"])
        self.norm.requires_grad_(False)  # MAMA.md §2: the final LayerNorm is frozen

    def forward(self, x):
        B = x.shape[0]
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(B, -1, -1), t], 1) + self.pos
        t = torch.cat([t[:, :1], self.reg.expand(B, -1, -1), t[:, 1:]], 1)
        t = run_blocks(self.blocks, t, self.ckpt)
        return t, self.norm(t)[:, 1 + self.R:]


class Conv1D(nn.Module):
    """GPT-2's linear layer, weight stored [in, out]; LoRA (PEFT's layout) when lora is given:
    y = x·W + b + (alpha/rank)·dropout(x)·Aᵀ·Bᵀ."""

    def __init__(self, inF, outF, lora=None):
        super().__init__()
        self.weight, self.bias = tn((inF, outF), 0.02), nn.Parameter(torch.zeros(outF))
        self.lora = lora
        if lora:
            self.lora_A = tn((lora["rank"], inF), inF ** -0.5)
            self.lora_B = nn.Parameter(torch.zeros(outF, lora["rank"]))

    def forward(self, x):
        y = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)
        if not self.lora:
            return y
        low = F.linear(F.dropout(x, self.lora["dropout"], self.training), self.lora_A)
        return y + F.linear(low, self.lora_B) * (self.lora["alpha"] / self.lora["rank"])


class Gpt2Block(nn.Module):
    def __init__(self, c, index, lora, sdpa):
        super().__init__()
        D, self.heads, self.sdpa = c["width"], c["heads"], sdpa
        self.q_scale = 1.0 / (index + 1) if c["scale_by_layer"] else 1.0
        self.ln_1, self.ln_2 = nn.LayerNorm(D, eps=c["eps"]), nn.LayerNorm(D, eps=c["eps"])
        self.c_attn, self.c_proj = Conv1D(D, 3 * D, lora), Conv1D(D, D)
        self.c_fc, self.mlp_proj = Conv1D(D, 4 * D), Conv1D(4 * D, D)

    def forward(self, x, mask):
        q, k, v = self.c_attn(self.ln_1(x)).chunk(3, -1)
        x = x + self.c_proj(attend(q, k, v, self.heads, self.sdpa, self.q_scale, mask))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    """GPT-2 (BioMedLM's form) → final hidden states after ln_f. Padded positions attend to the
    real tokens only, as lib/nn/gpt2.ts passes kvLens. With LoRA the base is frozen."""

    def __init__(self, c, lora, sdpa, ckpt):
        super().__init__()
        self.ckpt = ckpt
        self.wte, self.wpe = nn.Embedding(c["vocab"], c["width"]), nn.Embedding(c["positions"], c["width"])
        self.h = nn.ModuleList(Gpt2Block(c, i, lora, sdpa) for i in range(c["depth"]))
        self.ln_f = nn.LayerNorm(c["width"], eps=c["eps"])
        init_like_ours(self)
        nn.init.trunc_normal_(self.wpe.weight, std=0.01, a=-0.02, b=0.02)
        if lora:
            for n, p in self.named_parameters():
                p.requires_grad_("lora_" in n)

    def forward(self, ids, lens):
        B, L = ids.shape
        pos = torch.arange(L, device=ids.device)
        keys = pos[None, None, :] < lens[:, None, None]  # [B, 1, L] real keys
        mask = (pos[None, :, None] >= pos[None, None, :]) & keys  # [B, L, L] causal and real
        x = self.wte(ids) + self.wpe(pos)[None]
        return self.ln_f(run_blocks(self.h, x, self.ckpt, mask[:, None]))


class LocalHead(nn.Module):
    """Linear → BN → ReLU → Linear → BN (no affine) → L2, per token. The BatchNorms run in f32
    (the project keeps normalisation statistics in f32)."""

    def __init__(self, inF, hidden, out):
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(inF, hidden), nn.BatchNorm1d(hidden)
        self.fc2, self.bn2 = nn.Linear(hidden, out), nn.BatchNorm1d(out, affine=False)

    def forward(self, x):
        return F.normalize(self.bn2(self.fc2(F.relu(self.bn1(self.fc1(x).float()))).float()), dim=-1)


class SimclrHead(nn.Module):
    def __init__(self, D, out):
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(D, D, bias=False), nn.BatchNorm1d(D)
        self.fc2, self.bn2 = nn.Linear(D, out, bias=False), nn.BatchNorm1d(out)

    def forward(self, x):
        return self.bn2(self.fc2(F.relu(self.bn1(self.fc1(x).float()))).float())


def clip_loss(v, t, log_scale):
    """CE(s·V·Tᵀ) + CE(s·T·Vᵀ), s = exp(logit_scale), in f32 (MAMA.md §3.1, no ½)."""
    logits = log_scale.exp() * v.float() @ t.float().t()
    labels = torch.arange(v.shape[0], device=v.device)
    return F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)


def nt_xent(z0, z1, temperature=0.5):
    """SimCLR over 2B anchors: each against its other view and the 2B−2 others (MAMA.md §3.2)."""
    B = z0.shape[0]
    z = F.normalize(torch.cat([z0, z1]).float(), dim=-1)
    sim = (z @ z.t() / temperature).masked_fill(torch.eye(2 * B, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(B, 2 * B), torch.arange(B)]).to(z.device)
    return F.cross_entropy(sim, targets)


def local_align(patches, sents, counts, mask, log_scale):
    """MAMA.md §3.4 as the authors' code computes it: every B·B·S·P similarity materialised
    (our kernel does not); sentence rows past a caption's count are masked out."""
    sim = torch.einsum("mje,nke->mnjk", sents, patches).float()  # [B, B, S, P]
    cv = (sim.max(-1).values * mask[:, None, :]).sum(-1) / counts[:, None]
    ct = sim.masked_fill(~mask[:, None, :, None], float("-inf")).max(-2).values.mean(-1)
    s, labels = log_scale.exp(), torch.arange(patches.shape[0], device=patches.device)
    return sum(F.cross_entropy(s * m, labels) for m in (cv, cv.t(), ct, ct.t()))


class Mama(nn.Module):
    def __init__(self, c, sdpa, ckpt):
        super().__init__()
        Dv, Dt, E = c["vit"]["width"], c["text"]["width"], c["embed"]
        self.c = c
        self.image_encoder = Vit(c["vit"], sdpa, ckpt)
        self.text_encoder = Gpt2(c["text"], c["lora"], sdpa, ckpt)
        self.image_projection, self.text_projection = nn.Linear(Dv, E), nn.Linear(Dt, E)
        self.local_image_head = LocalHead(Dv, c["local_hidden"], E)
        self.local_text_head = LocalHead(Dt, c["local_hidden"], E)
        self.simclr_head = SimclrHead(Dv, c["simclr_out"])
        self.logit_scale = nn.Parameter(torch.tensor(2.6592600369644165))  # ln(1/0.07)
        self.local_scale = nn.Parameter(torch.tensor(2.6592600369644165))
        for m in (self.image_encoder, self.image_projection, self.text_projection, self.local_image_head, self.local_text_head, self.simclr_head):
            init_like_ours(m)

    def encode_image(self, x):
        hidden, patches = self.image_encoder(x)
        pooled = hidden.mean(1)  # all tokens, before the final norm
        return F.normalize(self.image_projection(pooled), dim=-1), pooled, patches

    def loss(self, x, x2, ids, lens, sent):
        """All four terms (late step), as Mama.loss: sent = (real rows [N] into B·L, spread [B·S]
        into those rows, counts [B], mask [B, S])."""
        B, L = ids.shape
        v, pooled, patches = self.encode_image(x)
        h = self.text_encoder(ids, lens)
        t = F.normalize(self.text_projection(h.mean(1)), dim=-1)  # mean over all L positions
        v2, pooled2, _ = self.encode_image(x2)
        loss = clip_loss(v, t, self.logit_scale) + clip_loss(v2, t, self.logit_scale)
        loss = loss + nt_xent(self.simclr_head(pooled), self.simclr_head(pooled2))
        real, spread, counts, mask = sent
        heads = self.local_text_head(h.reshape(B * L, -1)[real])  # BatchNorm over the real sentences only
        sents = heads[spread].view(B, -1, heads.shape[-1])
        P = patches.shape[1]
        pat = self.local_image_head(patches.reshape(B * P, -1)).view(B, P, -1)
        return loss + local_align(pat, sents, counts, mask, self.local_scale)


def synthetic_batch(c, B, S, device):
    """Images [B, C, S, S] of both views (grayscale copied to C channels) on the host, ids, lens and
    sentence positions as bench/mama_step.bench.ts draws them (a caption of len − len//4·k tokens,
    8–12 separators spread evenly)."""
    g = torch.Generator().manual_seed(0)
    C, L, Smax = c["vit"]["channels"], c["max_tokens"], c["max_sentences"]
    img = lambda: torch.rand(B, 1, S, S, generator=g).mul(2).sub(1).expand(B, C, S, S).contiguous()
    ids = torch.randint(0, c["text"]["vocab"], (B, L), generator=g)
    lens = [L - (b * 37) % (L // 4) for b in range(B)]
    pos = [[(j + 1) * n // (8 + b % 5 + 1) for j in range(8 + b % 5)] for b, n in enumerate(lens)]
    counts = [min(Smax, len(p)) for p in pos]
    real, first = [], []
    for b, p in enumerate(pos):
        first.append(len(real))
        real += [b * L + p[j] for j in range(counts[b])]
    spread = [first[i // Smax] + min(i % Smax, counts[i // Smax] - 1) for i in range(B * Smax)]
    mask = torch.arange(Smax)[None, :] < torch.tensor(counts)[:, None]
    on = lambda x: torch.as_tensor(x).to(device)
    sent = (on(real), on(spread), on(counts).float(), on(mask))
    return img(), img(), on(ids), on(lens), sent


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build(c, args, device):
    # On CUDA the weights are drawn on the device (2.7 B of them at base).
    where = torch.device(device) if device == "cuda" and hasattr(torch.device, "__enter__") else contextlib.nullcontext()
    with where:
        model = Mama(c, args.sdpa, args.checkpoint == "on")
    model.to(device)
    if args.precision == "bf16":
        # Frozen matrices and embeddings stored in bf16 alone, trained weights in f32 (autocast
        # computes in bf16); frozen norms stay f32, which torch 1.13's CPU layer_norm needs.
        for p in model.parameters():
            if not p.requires_grad and p.dim() >= 2:
                p.data = p.data.bfloat16()
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    # Decay as our parameters declare it: on matrices, not on tokens and embeddings.
    tokens = ("image_encoder.cls", "image_encoder.reg", "image_encoder.pos", "text_encoder.wte.weight", "text_encoder.wpe.weight")
    decay = [p for n, p in trained if p.dim() >= 2 and n not in tokens]
    rest = [p for n, p in trained if not any(p is q for q in decay)]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]
    try:
        opt = torch.optim.AdamW(groups, lr=4e-5, fused=device == "cuda")
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(groups, lr=4e-5)
    return model, opt


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", choices=PRESETS, default="tiny")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--image-size", type=int, default=0, help="default: the preset's")
    ap.add_argument("--steps", type=int, default=5, help="timed steps, after --warmup")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--checkpoint", choices=["on", "off"], default="off")
    ap.add_argument("--sdpa", action="store_true", help="attention through F.scaled_dot_product_attention")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--count-only", action="store_true", help="build the model, print its parameter counts and stop")
    args = ap.parse_args()
    if args.sdpa and not hasattr(F, "scaled_dot_product_attention"):
        ap.error(f"--sdpa: torch {torch.__version__} has no F.scaled_dot_product_attention (2.0 on)")
    c = json.loads(json.dumps(PRESETS[args.preset]))
    if args.image_size:
        c["vit"]["image_size"] = args.image_size
    S, B, dev = c["vit"]["image_size"], args.batch, args.device
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rss0 = rss_bytes()
    report = {"impl": f"torch {torch.__version__}", "preset": args.preset, "device": dev, "precision": args.precision, "checkpoint": args.checkpoint,
              "sdpa": args.sdpa, "batch": B, "image_size": S}
    try:
        model, opt = build(c, args, dev)
        params = list(model.parameters())
        report["params_total"] = sum(p.numel() for p in params)
        report["params_trainable"] = sum(p.numel() for p in params if p.requires_grad)
        if args.count_only:
            print(json.dumps(report), flush=True)
            return
        x, x2, ids, lens, sent = synthetic_batch(c, B, S, dev)
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
        amp = (lambda: torch.autocast(dev, dtype=torch.bfloat16)) if args.precision == "bf16" else contextlib.nullcontext
        model.train()

        def step():
            opt.zero_grad(set_to_none=True)
            with amp():  # the images are uploaded every step, as Mama.loss uploads its batch
                loss = model.loss(x.to(dev), x2.to(dev), ids, lens, sent)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)  # pretrain's maxGradNorm
            opt.step()
            return loss

        for _ in range(args.warmup):
            step()
        sync()
        if dev == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            loss = step()
            sync()
            times.append(time.perf_counter() - t0)
    except RuntimeError as e:  # torch.cuda.OutOfMemoryError is one
        report.update(error="out of memory" if "out of memory" in str(e) else "failed", detail=str(e).split("\n")[0][:300])
        print(json.dumps(report), flush=True)
        sys.exit(3)
    sec = statistics.median(times)
    if dev == "cuda":
        peak, what = torch.cuda.max_memory_allocated(), "torch.cuda.max_memory_allocated over the timed steps (weights, grads, AdamW state, activations)"
    else:
        peak, what = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0, "max RSS less the RSS before the model was built"
    report.update(steps=len(times), seconds_per_step=sec, studies_per_s=B / sec, image_forwards_per_s=2 * B / sec, peak_bytes=peak, peak_what=what,
                  loss=loss.item())
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
