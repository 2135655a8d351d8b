# Warnings for the project's own targets; third-party headers come in as system includes.
add_library(mlops_warnings INTERFACE)
target_compile_options(mlops_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
                            -Wcast-align -Woverloaded-virtual -Wconversion -Wno-sign-conversion>)
