// nt_xent.cpp: NT-Xent (SimCLR) over the 2B anchors of two views: z = normalise([z0; z1]),
// logits z·zᵀ/τ without each anchor's own column, positive = the other view of the same
// sample, mean CE over the anchors. Gradients back through the normalisation.
#include <cmath>
#include <memory>

#include "losses.h"
#include "matmul.h"
#include "threadpool.h"
#include "../common/xent.h"

namespace mk {

void nt_xent(float* loss, float* dz0, float* dz1, const float* z0, const float* z1, int64_t B, int64_t E,
             float temperature) {
  const int64_t n = 2 * B;
  std::unique_ptr<float[]> buf(new float[size_t(2 * n * E + 2 * n * n + n)]());
  float *z = buf.get(), *dz = z + n * E, *sim = dz + n * E, *g = sim + n * n, *norm = g + n * n;
  for (int64_t a = 0; a < n; ++a) {
    const float* src = a < B ? z0 + a * E : z1 + (a - B) * E;
    double ss = 0;
    for (int64_t e = 0; e < E; ++e) ss += double(src[e]) * src[e];
    norm[a] = float(std::fmax(std::sqrt(ss), 1e-12));  // F.normalize's eps
    for (int64_t e = 0; e < E; ++e) z[a * E + e] = src[e] / norm[a];
  }
  matmul_f32(sim, z, z, nullptr, n, n, E, false, true, false);
  const float inv_t = 1.f / temperature;
  double unused = 0;
  // Anchor a's positive is the other view of its sample, a + B mod 2B; its own column is left out.
  *loss = float(xent_rows(sim, n, 1, n, n, B, true, inv_t, g, &unused));
  // sim = z·zᵀ/τ is symmetric in its use of z: dz = (g + gᵀ)·z / τ.
  for (int64_t a = 0; a < n; ++a)
    for (int64_t c = a; c < n; ++c) {
      const float t = (g[a * n + c] + g[c * n + a]) * inv_t;
      g[a * n + c] = g[c * n + a] = t;
    }
  matmul_f32(dz, g, z, nullptr, n, E, n, false, false, false);
  // Through z = x/‖x‖: dx = (dz − ⟨dz, z⟩ z) / ‖x‖.
  for (int64_t a = 0; a < n; ++a) {
    const float* za = z + a * E;
    const float* d = dz + a * E;
    double dot = 0;
    for (int64_t e = 0; e < E; ++e) dot += double(d[e]) * za[e];
    float* out = a < B ? dz0 + a * E : dz1 + (a - B) * E;
    for (int64_t e = 0; e < E; ++e) out[e] = float((d[e] - dot * za[e]) / norm[a]);
  }
}

}  // namespace mk
