// xent.h: the cross-entropy rows of the contrastive losses, shared by the CPU losses
// (clip_loss.cpp, nt_xent.cpp, local_align_loss.cpp) and the CUDA ones (losses.cu), in double:
// their logit matrices are batch × batch, tiny next to the GEMMs that make them.
#pragma once
#include <math.h>
#include <stdint.h>

#include "hd.h"

namespace mk {

struct XentRow {
  double loss;    // lse − x[label]
  double dscale;  // Σ_c grad[c]·x[c]: the row's part of dloss/dlog-scale when x = s·raw
};

// CE of one row x[c·cs] (c < C) against label; columns equal to skip (NT-Xent's self) are left
// out. Writes grad[c·cs] = (softmax − onehot)/R rounded to float (0 at skip), R the rows of
// the mean. The logits are read as float(x·s), the rounding of a scaled logit matrix.
MK_HD inline XentRow xent_row(const float* x, int64_t cs, int64_t C, int64_t label, int64_t skip, float s, float* grad,
                              double R) {
  double m = -INFINITY;
  for (int64_t c = 0; c < C; ++c)
    if (c != skip) m = fmax(m, double(x[c * cs] * s));
  double sum = 0;
  for (int64_t c = 0; c < C; ++c)
    if (c != skip) sum += exp(double(x[c * cs] * s) - m);
  const double lse = m + log(sum);
  XentRow r{lse - double(x[label * cs] * s), 0.0};
  for (int64_t c = 0; c < C; ++c) {
    const double xc = double(x[c * cs] * s);
    const float g = c == skip ? 0.f : float((exp(xc - lse) - (c == label ? 1.0 : 0.0)) / R);
    grad[c * cs] = g;
    r.dscale += double(g) * xc;
  }
  return r;
}

// Mean over the R rows of CE(s·logits[r, :], (r + shift) mod C) for logits [R, C] (row stride
// ld, column stride cs: a transposed view is ld = 1, cs = R's stride), skipping column r when
// skip_self; grad (same strides) = (softmax − onehot)/R. Adds the rows' dscale into *dscale.
inline double xent_rows(const float* logits, int64_t ld, int64_t cs, int64_t R, int64_t C, int64_t shift,
                        bool skip_self, float s, float* grad, double* dscale) {
  double loss = 0;
  for (int64_t r = 0; r < R; ++r) {
    const XentRow x = xent_row(logits + r * ld, cs, C, (r + shift) % C, skip_self ? r : -1, s, grad + r * ld, double(R));
    loss += x.loss, *dscale += x.dscale;
  }
  return loss / double(R);
}

}  // namespace mk
