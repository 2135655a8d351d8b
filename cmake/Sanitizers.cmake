# MLOPS_SANITIZE=ON builds everything with ASan and UBSan; UBSan findings abort so tests fail.
# The flags go to C++ only: nvcc's host compiler would refuse them in CUDA sources.
if(MLOPS_SANITIZE)
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined;-fno-sanitize-recover=undefined;-fno-omit-frame-pointer>")
  add_link_options(-fsanitize=address,undefined)
endif()

# MLOPS_FUZZ=ON (clang only) instruments every library for libFuzzer's coverage guidance; the fuzz
# binaries add the libFuzzer driver itself (tests/fuzz).
if(MLOPS_FUZZ)
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link,address,undefined>")
  add_link_options(-fsanitize=address,undefined)
endif()
