# binding.gyp: the node-gyp build of mamakit.node, CPU backend only (the CUDA backend is
# built by CMakeLists.txt). `npx node-gyp rebuild` produces build/Release/mamakit.node.
{
  "targets": [{
    "target_name": "mamakit",
    "sources": [
      "native/addon/addon.cpp",
      "native/addon/devices.cpp",
      "native/addon/tensor.cpp",
      "native/addon/matmul.cpp",
      "native/cpu/isa.cpp",
      "native/cpu/threadpool.cpp",
      "native/cpu/matmul.cpp",
      "native/cpu/matmul_avx2.cpp",
      "native/cpu/matmul_avx512.cpp",
      "native/cpu/backend.cpp"
    ],
    "include_dirs": [
      "<!(node -p \"require('node-addon-api').include_dir\")",
      "native/include"
    ],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "MK_BUILD_SYSTEM=\"node-gyp\""],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
    "cflags_cc": ["-std=c++20", "-O3", "-fno-math-errno", "-fvisibility=hidden"],
    "libraries": ["-ldl", "-lpthread"]
  }]
}
