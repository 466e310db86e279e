// xent.h: the small cross-entropy blocks of the contrastive losses (clip_loss.cpp, nt_xent.cpp,
// local_align.cpp), in double: their logit matrices are batch × batch, tiny next to the GEMMs.
#pragma once
#include <cmath>
#include <cstdint>

namespace mk {

// Mean over the R rows of CE(logits[r, :], label[r]) for logits [R, C] (row stride ld, column
// stride cs: a transposed view is ld = 1, cs = R's stride); adds w·(softmax − onehot)/R into
// grad (same strides) and returns the loss. Columns with skip[c] set are left out (NT-Xent's self).
inline double xent_rows(const float* logits, int64_t ld, int64_t cs, const int64_t* label, int64_t R, int64_t C,
                        float* grad, double w, const int64_t* skip = nullptr) {
  double loss = 0;
  for (int64_t r = 0; r < R; ++r) {
    const float* x = logits + r * ld;
    double m = -INFINITY;
    for (int64_t c = 0; c < C; ++c)
      if (!(skip && skip[r] == c)) m = std::fmax(m, double(x[c * cs]));
    double sum = 0;
    for (int64_t c = 0; c < C; ++c)
      if (!(skip && skip[r] == c)) sum += std::exp(double(x[c * cs]) - m);
    const double lse = m + std::log(sum);
    loss += lse - double(x[label[r] * cs]);
    if (grad) {
      float* g = grad + r * ld;
      for (int64_t c = 0; c < C; ++c) {
        if (skip && skip[r] == c) continue;
        const double p = std::exp(double(x[c * cs]) - lse) - (c == label[r] ? 1.0 : 0.0);
        g[c * cs] += float(w * p / double(R));
      }
    }
  }
  return loss / double(R);
}

}  // namespace mk
