# CUDA is optional: AUTO turns it on when nvcc exists, OFF forces a CPU-only build, ON insists.
# The runtime is linked statically so the binaries need no CUDA library at run time; without a
# driver, cudaGetDeviceCount fails and callers fall back to the CPU.
set(MLOPS_WITH_CUDA OFF)
if(NOT MLOPS_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER AND EXISTS "${CMAKE_CUDA_COMPILER}")
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # 80 covers A100, 90 covers H100/H200; "native" fails on machines without a GPU.
      set(CMAKE_CUDA_ARCHITECTURES 80 90)
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 refuses CUDA C++20.
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(MLOPS_WITH_CUDA ON)
  elseif(MLOPS_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MLOPS_CUDA=ON but no CUDA compiler was found; install nvcc or use -DMLOPS_CUDA=OFF")
  endif()
endif()
message(STATUS "mlops: CUDA paths ${MLOPS_WITH_CUDA}")
