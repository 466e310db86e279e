// embedding.cpp: bindings of embedding(table [V,D], ids) -> [N,D] and
// embeddingBackward(dy [N,D], ids, dTable [V,D]) -> dTable (accumulated).
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value Embedding(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "embedding");
  NativeTensor* table = a.tensor(info[0], "table");
  Napi::Env env = info.Env();
  MK_RANGE_CHECK(table->shape().size() == 2, "embedding: table must be 2-D [V,D], got ", shape_str(table->shape()));
  const int64_t V = table->shape()[0], D = table->shape()[1];
  MK_TYPE_CHECK(info[1].IsTypedArray(), "embedding: ids must be an Int32Array, got ", describe_value(info[1]));
  const int64_t N = int64_t(info[1].As<Napi::TypedArray>().ElementLength());
  MK_RANGE_CHECK(N >= 1, "embedding: ids must not be empty");
  const int32_t* ids = a.int32s(info[1], "ids", N, 0, int32_t(V - 1));
  Device& d = device(table->dev());
  auto fn = a.entry(d.backend->embedding_forward, table->dev());
  Napi::Object y = a.alloc(table->dev(), table->dtype(), {N, D});
  a.status(fn(d.ctx, ptr(unwrap(y)), table->data(), ids, table->dtype(), N, D), table->dev());
  return y;
}

Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "embeddingBackward");
  NativeTensor* dy = a.tensor(info[0], "dy");
  NativeTensor* dtable = a.tensor(info[2], "dTable");
  Napi::Env env = info.Env();
  MK_RANGE_CHECK(dy->shape().size() == 2, "embeddingBackward: dy must be 2-D [N,D], got ", shape_str(dy->shape()));
  MK_RANGE_CHECK(dtable->shape().size() == 2, "embeddingBackward: dTable must be 2-D [V,D], got ", shape_str(dtable->shape()));
  const int64_t N = dy->shape()[0], D = dy->shape()[1], V = dtable->shape()[0];
  a.like(dtable, "dTable", dy, "dy"), a.shape(dtable, "dTable", {V, D});
  const int32_t* ids = a.int32s(info[1], "ids", N, 0, int32_t(V - 1));
  Device& d = device(dy->dev());
  auto fn = a.entry(d.backend->embedding_backward, dy->dev());
  a.status(fn(d.ctx, dtable->data(), dy->data(), ids, dy->dtype(), N, D), dy->dev());
  return info[2];
}

}  // namespace mk
