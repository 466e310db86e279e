// backend.cpp: the CPU backend's mk_backend table (native/include/mamakit.h). Memory is host
// memory (alloc.h); only f32 is stored on the CPU. Every kernel entry is adapt<kernel>: the ABI's
// untyped pointers become float pointers, the dtype argument is checked (f32) and dropped, and
// an allocation failure inside a kernel becomes MK_ERR_OOM.
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <tuple>
#include <type_traits>

#include "../common/matmul_args.h"
#include "alloc.h"
#include "isa.h"
#include "losses.h"
#include "mamakit.h"
#include "matmul.h"
#include "ops.h"
#include "patch_embed.h"
#include "threadpool.h"

struct mk_context {
  std::string description;
};

namespace {

thread_local std::string t_error;

mk_status fail(mk_status s, std::string msg) {
  t_error = std::move(msg);
  return s;
}

// An ABI argument as the CPU kernel takes it: pointers to data become float pointers, the dtype
// disappears (checked first), everything else passes as is.
template <class T>
std::tuple<T> arg(T x) {
  return std::tuple<T>(x);
}
inline std::tuple<float*> arg(void* p) { return std::tuple<float*>(static_cast<float*>(p)); }
inline std::tuple<const float*> arg(const void* p) { return std::tuple<const float*>(static_cast<const float*>(p)); }
inline std::tuple<> arg(mk_dtype) { return {}; }

template <class T>
bool not_f32(T) {
  return false;
}
inline bool not_f32(mk_dtype d) { return d != MK_F32; }

template <auto Kernel, class... A>
mk_status adapt(mk_context*, A... args) {
  if ((not_f32(args) || ...))
    return fail(MK_ERR_UNSUPPORTED, "the CPU backend stores and computes f32 only");
  try {
    std::apply(Kernel, std::tuple_cat(arg(args)...));
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory for a kernel's workspace");
  }
  return MK_OK;
}

// The entry for `field`, with the parameter types the table declares for it.
template <auto Kernel, class... A>
constexpr auto entry(mk_status (*)(mk_context*, A...)) -> mk_status (*)(mk_context*, A...) {
  return &adapt<Kernel, A...>;
}
#define MK_CPU_ENTRY(field, kernel) .field = entry<kernel>(decltype(mk_backend::field){})

// Kernels whose ABI form differs from ops.h: booleans passed as int, and the cast (f32 to f32).
void matmul(float* c, const float* a, const float* b, const float* bias, int64_t M, int64_t N, int64_t K, int ta, int tb,
            int acc) {
  mk::matmul_f32(c, a, b, bias, M, N, K, ta != 0, tb != 0, acc != 0);
}
void cast(float* dst, const float* src, int64_t n) { mk::copy(dst, src, n); }

// matmul's entry names a refused dtype pair (mixed-precision callers pass c_dtype f32 with bf16
// operands, which only the CUDA backend takes).
mk_status cpu_matmul(mk_context* ctx, void* c, const void* a, const void* b, const void* bias, mk_dtype dtype, mk_dtype c_dtype,
                     int64_t M, int64_t N, int64_t K, int ta, int tb, int acc) {
  namespace args = mk::matmul_args;
  if (const std::string why = args::problem(c, a, b, M, N, K); !why.empty()) return fail(MK_ERR_INVALID, why);
  if (dtype != MK_F32 || c_dtype != MK_F32) return fail(MK_ERR_UNSUPPORTED, args::refusal("the CPU backend", dtype, c_dtype, "f32 only"));
  return entry<matmul>(decltype(mk_backend::matmul){})(ctx, c, a, b, bias, dtype, c_dtype, M, N, K, ta, tb, acc);
}

mk_status cpu_create(mk_context** ctx) {
  try {
    auto* c = new mk_context();
    c->description = std::string("CPU, ") + mk::isa_name(mk::isa()) + ", " + std::to_string(mk::threads()) + " threads";
    *ctx = c;
    return MK_OK;
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory");
  }
}

void cpu_destroy(mk_context* ctx) { delete ctx; }
const char* cpu_last_error(mk_context*) { return t_error.c_str(); }
const char* cpu_describe(mk_context* ctx) { return ctx->description.c_str(); }

mk_status cpu_alloc(mk_context*, void** ptr, size_t bytes) {
  std::string why;
  *ptr = mk::host_alloc(bytes, &why);
  return *ptr ? MK_OK : fail(MK_ERR_OOM, why);
}

void cpu_free(mk_context*, void* ptr) { mk::host_free(ptr); }

mk_status cpu_upload(mk_context*, void* dst, mk_dtype dtype, const float* src, size_t n) {
  if (dtype != MK_F32) return fail(MK_ERR_UNSUPPORTED, "the CPU backend stores f32 only");
  std::memcpy(dst, src, n * sizeof(float));
  return MK_OK;
}

mk_status cpu_download(mk_context*, float* dst, const void* src, mk_dtype dtype, size_t n) {
  if (dtype != MK_F32) return fail(MK_ERR_UNSUPPORTED, "the CPU backend stores f32 only");
  std::memcpy(dst, src, n * sizeof(float));
  return MK_OK;
}

mk_status cpu_synchronize(mk_context*) { return MK_OK; }
mk_status cpu_noop(mk_context*) { return MK_OK; }

mk_status cpu_memory(mk_context*, int64_t* live, int64_t* peak, int64_t* held, int reset) {
  *live = mk::host_live(), *peak = mk::host_peak(reset != 0), *held = mk::host_footprint();
  return MK_OK;
}

mk_status cpu_traffic(mk_context*, uint64_t* to_device, uint64_t* to_host, uint64_t* syncs) {
  *to_device = *to_host = *syncs = 0;
  return MK_OK;
}

mk_status cpu_cast(mk_context* ctx, void* dst, mk_dtype dst_dtype, const void* src, mk_dtype src_dtype, int64_t n) {
  if (dst_dtype != MK_F32 || src_dtype != MK_F32) return fail(MK_ERR_UNSUPPORTED, "the CPU backend stores f32 only");
  return adapt<cast, void*, const void*, int64_t>(ctx, dst, src, n);
}

const mk_backend kCpu = {
    .abi_version = MK_ABI_VERSION,
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .last_error = cpu_last_error,
    .describe = cpu_describe,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .synchronize = cpu_synchronize,
    .noop = cpu_noop,
    .memory = cpu_memory,
    .traffic = cpu_traffic,
    .matmul = cpu_matmul,
    MK_CPU_ENTRY(layernorm_forward, mk::layernorm_forward),
    MK_CPU_ENTRY(layernorm_backward, mk::layernorm_backward),
    MK_CPU_ENTRY(gelu_forward, mk::gelu_forward),
    MK_CPU_ENTRY(gelu_backward, mk::gelu_backward),
    MK_CPU_ENTRY(softmax_xent_forward, mk::softmax_xent_forward),
    MK_CPU_ENTRY(softmax_xent_backward, mk::softmax_xent_backward),
    MK_CPU_ENTRY(l2norm_forward, mk::l2norm_forward),
    MK_CPU_ENTRY(l2norm_backward, mk::l2norm_backward),
    MK_CPU_ENTRY(residual_forward, mk::residual_forward),
    MK_CPU_ENTRY(residual_backward, mk::residual_backward),
    MK_CPU_ENTRY(meanpool_forward, mk::meanpool_forward),
    MK_CPU_ENTRY(meanpool_backward, mk::meanpool_backward),
    MK_CPU_ENTRY(embedding_forward, mk::embedding_forward),
    MK_CPU_ENTRY(embedding_backward, mk::embedding_backward),
    MK_CPU_ENTRY(batchnorm_forward, mk::batchnorm_forward),
    MK_CPU_ENTRY(batchnorm_backward, mk::batchnorm_backward),
    MK_CPU_ENTRY(dropout, mk::dropout),
    MK_CPU_ENTRY(adamw, mk::adamw),
    MK_CPU_ENTRY(sgd, mk::sgd),
    MK_CPU_ENTRY(sumsq, mk::sumsq),
    MK_CPU_ENTRY(copy, mk::copy),
    MK_CPU_ENTRY(patch_embed_forward, mk::patch_embed_forward),
    MK_CPU_ENTRY(patch_embed_backward, mk::patch_embed_backward),
    MK_CPU_ENTRY(pos_interp_forward, mk::pos_interp_forward),
    MK_CPU_ENTRY(pos_interp_backward, mk::pos_interp_backward),
    MK_CPU_ENTRY(attention_forward, mk::attention_forward),
    MK_CPU_ENTRY(attention_backward, mk::attention_backward),
    MK_CPU_ENTRY(relu_forward, mk::relu_forward),
    MK_CPU_ENTRY(relu_backward, mk::relu_backward),
    MK_CPU_ENTRY(copy2d, mk::copy2d),
    MK_CPU_ENTRY(clip_loss, mk::clip_loss),
    MK_CPU_ENTRY(nt_xent, mk::nt_xent),
    MK_CPU_ENTRY(local_align, mk::local_align_loss),
    MK_CPU_ENTRY(fill, mk::fill),
    MK_CPU_ENTRY(axpy, mk::axpy),
    MK_CPU_ENTRY(scale, mk::scale),
    .cast = cpu_cast,
};

}  // namespace

extern "C" const mk_backend* mk_cpu_backend(void) { return &kCpu; }
extern "C" const char* mk_cpu_isa(void) { return mk::isa_name(mk::isa()); }
extern "C" const char* mk_cpu_best_isa(void) { return mk::isa_name(mk::best_isa()); }
extern "C" int mk_cpu_set_isa(const char* name) {
  for (mk::Isa i : {mk::Isa::avx512, mk::Isa::avx2, mk::Isa::scalar})
    if (!std::strcmp(name, mk::isa_name(i))) return mk::set_isa(i) ? 0 : -2;
  return -1;
}
extern "C" int mk_cpu_threads(void) { return mk::threads(); }
extern "C" int64_t mk_cpu_footprint(void) { return mk::host_footprint(); }
extern "C" int64_t mk_cpu_live_bytes(void) { return mk::host_live(); }
extern "C" int64_t mk_cpu_peak_bytes(int reset) { return mk::host_peak(reset != 0); }
