# Rewrites one .cu file for the emulated build (cuda_emulation.hpp): includes what nvcc includes
# implicitly, and turns each launch `kernel<<<config>>>(arguments)` into
# `kernel | ::mlops::cuda_emulation::launch(config)(arguments)`. #line keeps compiler and
# sanitizer reports on the original file and line.
# cmake -DIN=source.cu -DOUT=translated.cpp -P translate_launches.cmake
file(READ "${IN}" source)
string(REGEX MATCHALL "<<<" opens "${source}")
string(REGEX MATCHALL ">>>" closes "${source}")
list(LENGTH opens open_count)
list(LENGTH closes close_count)
if(NOT open_count EQUAL close_count)
  message(FATAL_ERROR "${IN}: ${open_count} '<<<' but ${close_count} '>>>': every '>>>' must close a launch")
endif()
string(REPLACE "<<<" " | ::mlops::cuda_emulation::launch(" source "${source}")
string(REPLACE ">>>" ")" source "${source}")
file(WRITE "${OUT}" "#include \"cuda_emulation.hpp\"\n#line 1 \"${IN}\"\n${source}")
