# libcurl and libgit2 are loaded with dlopen on first use (include/mlops/util/shared_library.hpp
# says why). The binaries take their headers only; the file to load is the SONAME of the library
# found here, read with objdump so that it always matches the headers.
function(mlops_soname library out_var)
  get_filename_component(real "${library}" REALPATH)
  execute_process(COMMAND objdump -p "${real}" OUTPUT_VARIABLE dynamic RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT dynamic MATCHES "SONAME +([^\n ]+)")
    message(FATAL_ERROR "cannot read the SONAME of ${real}")
  endif()
  set(${out_var} "${CMAKE_MATCH_1}" PARENT_SCOPE)
endfunction()

find_library(MLOPS_LIBGIT2_LIBRARY NAMES git2 HINTS ${LIBGIT2_LIBRARY_DIRS} REQUIRED)
mlops_soname("${CURL_LIBRARIES}" MLOPS_LIBCURL_SONAME)
mlops_soname("${MLOPS_LIBGIT2_LIBRARY}" MLOPS_LIBGIT2_SONAME)
message(STATUS "mlops: on demand: ${MLOPS_LIBCURL_SONAME} ${MLOPS_LIBGIT2_SONAME}")

add_library(mlops_on_demand_headers INTERFACE)
target_include_directories(mlops_on_demand_headers SYSTEM INTERFACE ${CURL_INCLUDE_DIRS} ${LIBGIT2_INCLUDE_DIRS})
target_compile_definitions(mlops_on_demand_headers INTERFACE
  MLOPS_LIBCURL_SONAME="${MLOPS_LIBCURL_SONAME}" MLOPS_LIBGIT2_SONAME="${MLOPS_LIBGIT2_SONAME}")

# dpkg-shlibdeps cannot see libraries opened with dlopen, so the .deb names their packages itself.
function(mlops_debian_package library out_var)
  get_filename_component(real "${library}" REALPATH)
  get_filename_component(dir "${real}" DIRECTORY)
  execute_process(COMMAND dpkg-query -S "${dir}/${ARGN}" OUTPUT_VARIABLE owner
                  RESULT_VARIABLE rc ERROR_QUIET)
  if(rc EQUAL 0 AND owner MATCHES "^([^:]+)")
    set(${out_var} "${CMAKE_MATCH_1}" PARENT_SCOPE)
  else()
    message(WARNING "no Debian package owns ${dir}/${ARGN}; the .deb will not depend on it")
  endif()
endfunction()
mlops_debian_package("${CURL_LIBRARIES}" MLOPS_LIBCURL_PACKAGE "${MLOPS_LIBCURL_SONAME}")
mlops_debian_package("${MLOPS_LIBGIT2_LIBRARY}" MLOPS_LIBGIT2_PACKAGE "${MLOPS_LIBGIT2_SONAME}")
