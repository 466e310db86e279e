# attention_tc_emulation.py: a lane-level NumPy transliteration of forward_tc_kernel and
# backward_tc_kernel (native/cuda/attention.cu) with mma.m16n8k16 emulated from the PTX ISA's
# fragment layouts, checked against float64 attention. It checks the kernels' index logic
# (fragments, tiles, masks, online softmax) where no GPU is at hand; it proves nothing about
# the hardware, and must be kept in step with the .cu by hand. Not part of CI (needs NumPy):
#   /usr/bin/python3 native/tests/attention_tc_emulation.py
import numpy as np, math
def bf16(x):
    x = np.asarray(x, dtype=np.float32).copy()
    u = x.view(np.uint32)
    u[:] = ((u.astype(np.uint64) + 0x7fff + ((u >> 16) & 1)) & 0xffff0000).astype(np.uint32)
    return x
LANES = np.arange(32); G = LANES // 4; TQ = LANES % 4
def mma(c, a, b0, b1):
    # c: [32,4] f32; a: [32,4,2] (pairs lo,hi); b0,b1: [32,2]
    A = np.zeros((16, 16)); B = np.zeros((16, 8))
    for ln in range(32):
        g, t = G[ln], TQ[ln]
        for r in range(4):
            row = g + 8 * (r & 1); col = 2 * t + 8 * (r >> 1)
            A[row, col], A[row, col + 1] = a[ln, r]
        B[2 * t, g], B[2 * t + 1, g] = b0[ln]
        B[2 * t + 8, g], B[2 * t + 9, g] = b1[ln]
    C = A @ B
    out = c.copy()
    for ln in range(32):
        g, t = G[ln], TQ[ln]
        out[ln, 0] += C[g, 2 * t]; out[ln, 1] += C[g, 2 * t + 1]
        out[ln, 2] += C[g + 8, 2 * t]; out[ln, 3] += C[g + 8, 2 * t + 1]
    return out
def quad_reduce(x, op):
    x = x.copy()
    for m in (1, 2):
        x = op(x, x[LANES ^ m])
    return x
def run(q, k, v, B, Lq, Lk, H, Dh, scale, causal, kv_lens):
    out = np.zeros((B, Lq, H, Dh), np.float32); lse = np.zeros((B, H, Lq), np.float32)
    KT = 64
    def key_limit(b, i):
        lim = kv_lens[b] if kv_lens is not None else Lk
        if causal and i + 1 < lim: lim = i + 1
        return lim
    for b in range(B):
        for h in range(H):
            for bx in range((Lq + 63) // 64):
                last_row = min(Lq - 1, bx * 64 + 63); block_lim = key_limit(b, last_row)
                for warp in range(4):
                    row0 = bx * 64 + warp * 16
                    rows = [row0 + G, row0 + G + 8]
                    qa = np.zeros((Dh // 16, 32, 4, 2))
                    for kk in range(Dh // 16):
                        for r in range(4):
                            i = rows[r & 1]; col = kk * 16 + (r >> 1) * 8 + 2 * TQ
                            for ln in range(32):
                                if i[ln] < Lq: qa[kk, ln, r] = q[b, i[ln], h, col[ln]:col[ln] + 2]
                    lim = [np.array([key_limit(b, i) if i < Lq else 0 for i in rows[r]]) for r in range(2)]
                    o = np.zeros((Dh // 8, 32, 4)); m = [np.full(32, -np.inf), np.full(32, -np.inf)]; l = [np.zeros(32), np.zeros(32)]
                    sl2 = scale * 1.4426950408889634
                    for j0 in range(0, block_lim, KT):
                        ks = np.zeros((KT, Dh)); vt = np.zeros((Dh, KT))
                        for jj in range(KT):
                            if j0 + jj < Lk: ks[jj] = k[b, j0 + jj, h]; vt[:, jj] = v[b, j0 + jj, h]
                        s = np.zeros((KT // 8, 32, 4))
                        for n in range(KT // 8):
                            for kk in range(Dh // 16):
                                b0 = np.stack([ks[n * 8 + G, kk * 16 + 2 * TQ], ks[n * 8 + G, kk * 16 + 2 * TQ + 1]], 1)
                                b1 = np.stack([ks[n * 8 + G, kk * 16 + 2 * TQ + 8], ks[n * 8 + G, kk * 16 + 2 * TQ + 9]], 1)
                                s[n] = mma(s[n], qa[kk], b0, b1)
                        tmax = [np.full(32, -np.inf), np.full(32, -np.inf)]
                        for n in range(KT // 8):
                            for e in range(4):
                                r = e >> 1; j = j0 + n * 8 + 2 * TQ + (e & 1)
                                s[n][:, e] = np.where(j < lim[r], s[n][:, e] * sl2, -np.inf)
                                tmax[r] = np.maximum(tmax[r], s[n][:, e])
                        alpha = [None, None]; base = [None, None]
                        for r in range(2):
                            tmax[r] = quad_reduce(tmax[r], np.maximum)
                            mnew = np.maximum(m[r], tmax[r]); base[r] = np.where(mnew == -np.inf, 0, mnew)
                            alpha[r] = np.exp2(m[r] - base[r]); m[r] = mnew; l[r] = l[r] * alpha[r]
                        for n in range(KT // 8):
                            for e in range(4):
                                s[n][:, e] = np.exp2(s[n][:, e] - base[e >> 1]); l[e >> 1] = l[e >> 1] + s[n][:, e]
                        for n in range(Dh // 8):
                            o[n][:, 0] *= alpha[0]; o[n][:, 1] *= alpha[0]; o[n][:, 2] *= alpha[1]; o[n][:, 3] *= alpha[1]
                        for c in range(KT // 16):
                            pa = np.stack([np.stack([s[2*c][:, 0], s[2*c][:, 1]], 1), np.stack([s[2*c][:, 2], s[2*c][:, 3]], 1),
                                           np.stack([s[2*c+1][:, 0], s[2*c+1][:, 1]], 1), np.stack([s[2*c+1][:, 2], s[2*c+1][:, 3]], 1)], 1)
                            pa = bf16(pa)
                            for n in range(Dh // 8):
                                b0 = np.stack([vt[n * 8 + G, c * 16 + 2 * TQ], vt[n * 8 + G, c * 16 + 2 * TQ + 1]], 1)
                                b1 = np.stack([vt[n * 8 + G, c * 16 + 2 * TQ + 8], vt[n * 8 + G, c * 16 + 2 * TQ + 9]], 1)
                                o[n] = mma(o[n], pa, b0, b1)
                    for r in range(2):
                        l[r] = quad_reduce(l[r], np.add)
                        for ln in range(32):
                            i = rows[r][ln]
                            if i >= Lq: continue
                            inv = 1 / l[r][ln] if l[r][ln] > 0 else 0
                            for n in range(Dh // 8):
                                out[b, i, h, n * 8 + 2 * TQ[ln]] = o[n][ln, 2 * r] * inv
                                out[b, i, h, n * 8 + 2 * TQ[ln] + 1] = o[n][ln, 2 * r + 1] * inv
                            if TQ[ln] == 0: lse[b, h, i] = (m[r][ln] + math.log2(l[r][ln])) * math.log(2) if l[r][ln] > 0 else -np.inf
    return out, lse
def naive(q, k, v, B, Lq, Lk, H, Dh, scale, causal, kv_lens):
    out = np.zeros((B, Lq, H, Dh)); lse = np.zeros((B, H, Lq))
    for b in range(B):
        for h in range(H):
            S = q[b, :, h].astype(np.float64) @ k[b, :, h].astype(np.float64).T * scale
            for i in range(Lq):
                lim = kv_lens[b] if kv_lens is not None else Lk
                if causal: lim = min(lim, i + 1)
                if lim <= 0: out[b, i, h] = 0; lse[b, h, i] = -np.inf; continue
                s = S[i, :lim]; mx = s.max(); p = np.exp(s - mx)
                out[b, i, h] = p @ v[b, :lim, h] / p.sum(); lse[b, h, i] = mx + np.log(p.sum())
    return out, lse
def run_bwd(q, k, v, out, lse, dout, B, Lq, Lk, H, Dh, scale, causal, kv_lens):
    QT, KB = 32, 64
    dq = np.zeros((B, Lq, H, Dh)); dk = np.zeros((B, Lk, H, Dh), np.float32); dv = np.zeros_like(dk)
    D = np.einsum('bihd,bihd->bhi', dout.astype(np.float64), out.astype(np.float64))
    def key_limit(b, i):
        lim = kv_lens[b] if kv_lens is not None else Lk
        if causal and i + 1 < lim: lim = i + 1
        return lim
    sl2 = scale * 1.4426950408889634
    for b in range(B):
        for h in range(H):
            for bx in range((Lk + KB - 1) // KB):
                kb = bx * KB
                kts = np.zeros((Dh, KB))
                for jj in range(KB):
                    if kb + jj < Lk: kts[:, jj] = k[b, kb + jj, h]
                warps = []
                for warp in range(4):
                    key0 = kb + warp * 16; keys = [key0 + G, key0 + G + 8]
                    ka = np.zeros((Dh // 16, 32, 4, 2)); va = np.zeros_like(ka)
                    for kk in range(Dh // 16):
                        for r in range(4):
                            j = keys[r & 1]; col = kk * 16 + (r >> 1) * 8 + 2 * TQ
                            for ln in range(32):
                                if j[ln] < Lk: ka[kk, ln, r] = k[b, j[ln], h, col[ln]:col[ln] + 2]; va[kk, ln, r] = v[b, j[ln], h, col[ln]:col[ln] + 2]
                    warps.append(dict(keys=keys, ka=ka, va=va, gk=np.zeros((Dh // 8, 32, 4)), gv=np.zeros((Dh // 8, 32, 4))))
                kv_len = kv_lens[b] if kv_lens is not None else Lk
                i_first = (kb // QT) * QT if causal else 0
                i_end = Lq if kb < kv_len else 0
                for i0 in range(i_first, i_end, QT):
                    qs = np.zeros((QT, Dh)); gs = np.zeros((QT, Dh)); lse2 = np.zeros(QT); dds = np.zeros(QT)
                    for ii in range(QT):
                        if i0 + ii < Lq:
                            qs[ii] = q[b, i0 + ii, h]; gs[ii] = dout[b, i0 + ii, h]
                            lse2[ii] = np.float32(lse[b, h, i0 + ii] * 1.4426950408889634); dds[ii] = D[b, h, i0 + ii]
                    qts, gts = qs.T, gs.T
                    dss = np.zeros((QT, KB))
                    for warp, W in enumerate(warps):
                        p = np.zeros((QT // 8, 32, 4)); dp = np.zeros_like(p)
                        for n in range(QT // 8):
                            for kk in range(Dh // 16):
                                b0 = np.stack([qs[n * 8 + G, kk * 16 + 2 * TQ], qs[n * 8 + G, kk * 16 + 2 * TQ + 1]], 1)
                                b1 = np.stack([qs[n * 8 + G, kk * 16 + 2 * TQ + 8], qs[n * 8 + G, kk * 16 + 2 * TQ + 9]], 1)
                                p[n] = mma(p[n], W['ka'][kk], b0, b1)
                                b0 = np.stack([gs[n * 8 + G, kk * 16 + 2 * TQ], gs[n * 8 + G, kk * 16 + 2 * TQ + 1]], 1)
                                b1 = np.stack([gs[n * 8 + G, kk * 16 + 2 * TQ + 8], gs[n * 8 + G, kk * 16 + 2 * TQ + 9]], 1)
                                dp[n] = mma(dp[n], W['va'][kk], b0, b1)
                        for n in range(QT // 8):
                            for e in range(4):
                                iq = n * 8 + 2 * TQ + (e & 1); i = i0 + iq; j = W['keys'][e >> 1]
                                vis = np.array([i[ln] < Lq and j[ln] < key_limit(b, i[ln]) for ln in range(32)])
                                pe = np.where(vis, np.exp2(p[n][:, e] * sl2 - lse2[iq]), 0.0)
                                p[n][:, e] = pe
                                dp[n][:, e] = pe * (dp[n][:, e] - dds[iq]) * scale
                        for c in range(QT // 16):
                            pa = bf16(np.stack([np.stack([p[2*c][:, 0], p[2*c][:, 1]], 1), np.stack([p[2*c][:, 2], p[2*c][:, 3]], 1), np.stack([p[2*c+1][:, 0], p[2*c+1][:, 1]], 1), np.stack([p[2*c+1][:, 2], p[2*c+1][:, 3]], 1)], 1))
                            sa = bf16(np.stack([np.stack([dp[2*c][:, 0], dp[2*c][:, 1]], 1), np.stack([dp[2*c][:, 2], dp[2*c][:, 3]], 1), np.stack([dp[2*c+1][:, 0], dp[2*c+1][:, 1]], 1), np.stack([dp[2*c+1][:, 2], dp[2*c+1][:, 3]], 1)], 1))
                            for n in range(Dh // 8):
                                b0 = np.stack([gts[n * 8 + G, c * 16 + 2 * TQ], gts[n * 8 + G, c * 16 + 2 * TQ + 1]], 1)
                                b1 = np.stack([gts[n * 8 + G, c * 16 + 2 * TQ + 8], gts[n * 8 + G, c * 16 + 2 * TQ + 9]], 1)
                                W['gv'][n] = mma(W['gv'][n], pa, b0, b1)
                                b0 = np.stack([qts[n * 8 + G, c * 16 + 2 * TQ], qts[n * 8 + G, c * 16 + 2 * TQ + 1]], 1)
                                b1 = np.stack([qts[n * 8 + G, c * 16 + 2 * TQ + 8], qts[n * 8 + G, c * 16 + 2 * TQ + 9]], 1)
                                W['gk'][n] = mma(W['gk'][n], sa, b0, b1)
                        for n in range(QT // 8):
                            for e in range(4):
                                for ln in range(32):
                                    dss[n * 8 + 2 * TQ[ln] + (e & 1), warp * 16 + G[ln] + 8 * (e >> 1)] = bf16(np.array([dp[n][ln, e]]))[0]
                    for warp in range(4):
                        rt, half = warp % 2, warp // 2
                        i_lo = i0 + rt * 16 + G; i_hi = i_lo + 8
                        da = np.zeros((KB // 16, 32, 4, 2))
                        for kk in range(KB // 16):
                            for r in range(4):
                                for ln in range(32):
                                    row = rt * 16 + G[ln] + 8 * (r & 1); col = kk * 16 + (r >> 1) * 8 + 2 * TQ[ln]
                                    da[kk, ln, r] = dss[row, col:col + 2]
                        for n in range(Dh // 16):
                            d0 = half * (Dh // 2) + n * 8
                            acc = np.zeros((32, 4))
                            for kk in range(KB // 16):
                                b0 = np.stack([kts[d0 + G, kk * 16 + 2 * TQ], kts[d0 + G, kk * 16 + 2 * TQ + 1]], 1)
                                b1 = np.stack([kts[d0 + G, kk * 16 + 2 * TQ + 8], kts[d0 + G, kk * 16 + 2 * TQ + 9]], 1)
                                acc = mma(acc, da[kk], b0, b1)
                            for ln in range(32):
                                d = d0 + 2 * TQ[ln]
                                if i_lo[ln] < Lq: dq[b, i_lo[ln], h, d:d + 2] += acc[ln, 0:2]
                                if i_hi[ln] < Lq: dq[b, i_hi[ln], h, d:d + 2] += acc[ln, 2:4]
                for W in warps:
                    for r in range(2):
                        for ln in range(32):
                            j = W['keys'][r][ln]
                            if j >= Lk: continue
                            for n in range(Dh // 8):
                                d = n * 8 + 2 * TQ[ln]
                                dk[b, j, h, d:d + 2] = W['gk'][n][ln, 2 * r:2 * r + 2]; dv[b, j, h, d:d + 2] = W['gv'][n][ln, 2 * r:2 * r + 2]
    return dq, dk, dv
def naive_bwd(q, k, v, dout, B, Lq, Lk, H, Dh, scale, causal, kv_lens):
    dq = np.zeros((B, Lq, H, Dh)); dk = np.zeros((B, Lk, H, Dh)); dv = np.zeros_like(dk)
    for b in range(B):
        for h in range(H):
            S = q[b, :, h].astype(np.float64) @ k[b, :, h].astype(np.float64).T * scale
            mask = np.zeros((Lq, Lk), bool)
            for i in range(Lq):
                lim = kv_lens[b] if kv_lens is not None else Lk
                if causal: lim = min(lim, i + 1)
                mask[i, :lim] = True
            S = np.where(mask, S, -np.inf); mx = np.max(S, 1, keepdims=True); mx = np.where(np.isfinite(mx), mx, 0)
            P = np.exp(S - mx); den = P.sum(1, keepdims=True); P = np.where(den > 0, P / np.where(den > 0, den, 1), 0)
            g = dout[b, :, h].astype(np.float64); V = v[b, :, h].astype(np.float64); K = k[b, :, h].astype(np.float64); Q = q[b, :, h].astype(np.float64)
            O = P @ V; dP = g @ V.T; Dd = (g * O).sum(1, keepdims=True); dS = P * (dP - Dd) * scale
            dv[b, :, h] = P.T @ g; dk[b, :, h] = dS.T @ Q; dq[b, :, h] = dS @ K
    return dq, dk, dv

if __name__ == '__main__':
    rng = np.random.default_rng(0)
    for (B, Lq, Lk, H, Dh, causal, kv) in [(1, 67, 67, 1, 32, True, [50]), (2, 70, 130, 1, 80, False, [130, 3]), (1, 20, 20, 2, 64, False, None), (1, 65, 65, 1, 128, True, None), (1, 5, 9, 1, 32, False, [0])]:
        q = bf16(rng.standard_normal((B, Lq, H, Dh))); k = bf16(rng.standard_normal((B, Lk, H, Dh))); v = bf16(rng.standard_normal((B, Lk, H, Dh)))
        sc = 1 / math.sqrt(Dh)
        o1, l1 = run(q, k, v, B, Lq, Lk, H, Dh, sc, causal, kv)
        o2, l2 = naive(q, k, v, B, Lq, Lk, H, Dh, sc, causal, kv)
        fin = np.isfinite(l2)
        print((B, Lq, Lk, H, Dh, causal, kv), 'max |out err|', np.abs(o1 - o2).max(), 'max |lse err|', np.abs(l1[fin] - l2[fin]).max() if fin.any() else 0, 'lse -inf match', np.array_equal(np.isinf(l1), np.isinf(l2)))
        # P is rounded to 16 bits before P·V: errors of a few 1e-3 (an index error gives O(1))
        assert np.abs(o1 - o2).max() <= 1e-2 and (not fin.any() or np.abs(l1[fin] - l2[fin]).max() <= 1e-5), 'forward'
        assert np.array_equal(np.isinf(l1), np.isinf(l2)), 'rows with no visible key: lse -inf'
    rng = np.random.default_rng(1)
    for (B, Lq, Lk, H, Dh, causal, kv) in [(1, 67, 67, 1, 32, True, [50]), (2, 40, 130, 1, 80, False, [130, 3]), (1, 33, 33, 1, 64, True, None), (1, 20, 70, 1, 128, False, [0])]:
        q = bf16(rng.standard_normal((B, Lq, H, Dh))); k = bf16(rng.standard_normal((B, Lk, H, Dh))); v = bf16(rng.standard_normal((B, Lk, H, Dh))); g = bf16(rng.standard_normal((B, Lq, H, Dh)))
        sc = 1 / math.sqrt(Dh)
        o, l = naive(q, k, v, B, Lq, Lk, H, Dh, sc, causal, kv)
        o = bf16(o.astype(np.float32)); l = l.astype(np.float32)
        r1 = run_bwd(q, k, v, o, l, g, B, Lq, Lk, H, Dh, sc, causal, kv)
        r2 = naive_bwd(q, k, v, g, B, Lq, Lk, H, Dh, sc, causal, kv)
        print((B, Lq, Lk, H, Dh, causal, kv), ' '.join(f'{n} max err {np.abs(a - e).max():.2e} (scale {np.abs(e).max():.2f})' for n, a, e in zip(['dq', 'dk', 'dv'], r1, r2)))
        for n, a, e in zip(['dq', 'dk', 'dv'], r1, r2):
            assert np.abs(a - e).max() <= 4e-3 * max(1.0, np.abs(e).max()), n
        if kv is not None:
            for b in range(B):
                assert np.all(r1[1][b, kv[b]:] == 0) and np.all(r1[2][b, kv[b]:] == 0), 'masked keys get exactly zero gradient'
    print('ok')
