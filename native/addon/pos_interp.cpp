// pos_interp.cpp: bindings of interpolatePos(x, h0, w0, h1, w1, scaleH, scaleW) -> y [h1·w1, D]
// and interpolatePosBackward(dy, h0, w0, h1, w1, scaleH, scaleW) -> dx [h0·w0, D]. The scales
// are source steps per output pixel (h0/h1 for a target size; 1/scale_factor otherwise).
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {
namespace {

struct Grid {
  int64_t h0, w0, h1, w1;
  float sh, sw;
};

Grid grid(const Args& a, const Napi::CallbackInfo& info, int at) {
  Grid g;
  g.h0 = a.integer(info[at], "fromH", 1, 1 << 16), g.w0 = a.integer(info[at + 1], "fromW", 1, 1 << 16);
  g.h1 = a.integer(info[at + 2], "toH", 1, 1 << 16), g.w1 = a.integer(info[at + 3], "toW", 1, 1 << 16);
  g.sh = float(a.number(info[at + 4], "scaleH", 1e-6, 1e6)), g.sw = float(a.number(info[at + 5], "scaleW", 1e-6, 1e6));
  return g;
}

}  // namespace

Napi::Value PosInterp(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "interpolatePos");
  Napi::Env env = info.Env();
  NativeTensor* x = a.tensor(info[0], "pos");
  const Grid g = grid(a, info, 1);
  MK_RANGE_CHECK(x->shape().size() == 2 && x->shape()[0] == g.h0 * g.w0, "interpolatePos: pos must be [",
                 g.h0 * g.w0, ", D] for a ", g.h0, "×", g.w0, " grid, got ", shape_str(x->shape()));
  const int64_t D = x->shape()[1];
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->pos_interp_forward, x->dev());
  Napi::Object y = a.alloc(x->dev(), x->dtype(), {g.h1 * g.w1, D});
  a.status(fn(d.ctx, ptr(unwrap(y)), x->data(), x->dtype(), g.h0, g.w0, g.h1, g.w1, D, g.sh, g.sw), x->dev());
  return y;
}

Napi::Value PosInterpBackward(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "interpolatePosBackward");
  Napi::Env env = info.Env();
  NativeTensor* dy = a.tensor(info[0], "dy");
  const Grid g = grid(a, info, 1);
  MK_RANGE_CHECK(dy->shape().size() == 2 && dy->shape()[0] == g.h1 * g.w1, "interpolatePosBackward: dy must be [",
                 g.h1 * g.w1, ", D] for a ", g.h1, "×", g.w1, " grid, got ", shape_str(dy->shape()));
  const int64_t D = dy->shape()[1];
  Device& d = device(dy->dev());
  auto fn = a.entry(d.backend->pos_interp_backward, dy->dev());
  Napi::Object dx = a.alloc(dy->dev(), dy->dtype(), {g.h0 * g.w0, D});
  a.status(fn(d.ctx, ptr(unwrap(dx)), dy->data(), dy->dtype(), g.h0, g.w0, g.h1, g.w1, D, g.sh, g.sw), dy->dev());
  return dx;
}

}  // namespace mk
