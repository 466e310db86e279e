# binding.gyp: the node-gyp build of mamakit.node, CPU backend only (the CUDA and MPI libraries
# are built by CMakeLists.txt). `npx node-gyp rebuild` produces build/Release/mamakit.node.
# As in CMakeLists.txt, the op files are compiled three times (scalar, AVX2, AVX-512) into
# static libraries and the addon picks one per call at run time.
{
  "variables": {
    "ops": [
      "native/cpu/layernorm.cpp", "native/cpu/gelu.cpp", "native/cpu/softmax_xent.cpp",
      "native/cpu/l2norm.cpp", "native/cpu/residual.cpp", "native/cpu/meanpool.cpp",
      "native/cpu/embedding.cpp", "native/cpu/batchnorm.cpp", "native/cpu/dropout.cpp",
      "native/cpu/adamw.cpp", "native/cpu/sgd.cpp", "native/cpu/sumsq.cpp", "native/cpu/copy.cpp",
      "native/cpu/pos_interp.cpp", "native/cpu/attention.cpp", "native/cpu/local_align.cpp", "native/cpu/copy2d.cpp", "native/cpu/relu.cpp", "native/cpu/axpy.cpp"
    ],
    "cpu_flags": ["-std=c++20", "-O3", "-fno-math-errno", "-fno-trapping-math", "-fvisibility=hidden", "-fPIC"]
  },
  "target_defaults": {
    "include_dirs": ["native/include"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
    "cflags!": ["-fno-exceptions"]
  },
  "targets": [
    {
      "target_name": "mamakit_cpu_scalar", "type": "static_library", "sources": ["<@(ops)"],
      "defines": ["MK_ISA_LEVEL=0"], "cflags_cc": ["<@(cpu_flags)"]
    },
    {
      "target_name": "mamakit_cpu_avx2", "type": "static_library", "sources": ["<@(ops)"],
      "defines": ["MK_ISA_LEVEL=1"], "cflags_cc": ["<@(cpu_flags)", "-mavx2", "-mfma"]
    },
    {
      "target_name": "mamakit_cpu_avx512", "type": "static_library", "sources": ["<@(ops)"],
      "defines": ["MK_ISA_LEVEL=2"],
      "cflags_cc": ["<@(cpu_flags)", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma", "-Wno-maybe-uninitialized", "-Wno-uninitialized"]
    },
    {
      "target_name": "mamakit",
      "dependencies": ["mamakit_cpu_scalar", "mamakit_cpu_avx2", "mamakit_cpu_avx512"],
      "sources": [
        "native/addon/addon.cpp", "native/addon/devices.cpp", "native/addon/tensor.cpp",
        "native/addon/matmul.cpp", "native/addon/layernorm.cpp", "native/addon/gelu.cpp",
        "native/addon/softmax_xent.cpp", "native/addon/l2norm.cpp", "native/addon/residual.cpp",
        "native/addon/meanpool.cpp", "native/addon/embedding.cpp", "native/addon/batchnorm.cpp",
        "native/addon/dropout.cpp", "native/addon/optim.cpp", "native/addon/patch_embed.cpp",
        "native/addon/pos_interp.cpp", "native/addon/attention.cpp",
        "native/addon/clip_loss.cpp", "native/addon/nt_xent.cpp", "native/addon/local_align.cpp", "native/addon/relu.cpp",
        "native/addon/copy.cpp", "native/addon/axpy.cpp", "native/addon/dist.cpp",
        "native/cpu/alloc.cpp", "native/cpu/isa.cpp", "native/cpu/threadpool.cpp", "native/cpu/dispatch.cpp",
        "native/cpu/matmul.cpp", "native/cpu/matmul_avx2.cpp", "native/cpu/matmul_avx512.cpp",
        "native/cpu/patch_embed.cpp", "native/cpu/clip_loss.cpp", "native/cpu/nt_xent.cpp",
        "native/cpu/local_align_loss.cpp",
        "native/cpu/backend.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/dist"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "MK_BUILD_SYSTEM=\"node-gyp\""],
      "cflags_cc": ["<@(cpu_flags)"],
      "libraries": ["-ldl", "-lpthread"]
    }
  ]
}
