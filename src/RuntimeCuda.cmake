# The runtime's CUDA device and its kernels (worker/runtime/cuda/*.cu, one file per family of
# operators, as on the CPU), compiled by nvcc as C++17. An object library, so that its objects go
# into mlops_runtime itself: the runtime and the kernels call each other, and one archive links
# in any order. The CUDA runtime is linked statically, as for the probe.
file(GLOB MLOPS_CUDA_KERNELS CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/worker/runtime/cuda/*.cu")
add_library(mlops_runtime_cuda OBJECT ${MLOPS_CUDA_KERNELS})
target_include_directories(mlops_runtime_cuda PRIVATE "${PROJECT_SOURCE_DIR}/include")
target_compile_options(mlops_runtime_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra --Werror=cross-execution-space-call>)
target_link_libraries(mlops_runtime_cuda PUBLIC CUDA::cudart_static fmt::fmt ${CMAKE_DL_LIBS})
set_target_properties(mlops_runtime_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Static POSITION_INDEPENDENT_CODE ON)
target_link_libraries(mlops_runtime PRIVATE mlops_runtime_cuda)
