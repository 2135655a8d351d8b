#pragma once
// libcurl and libgit2, loaded on first use (see util/shared_library.hpp for why). Each API struct
// holds the functions mlops calls, with their real types; callers use them exactly like the
// library's own functions: `curl().version_info(CURLVERSION_NOW)`. A function joins its struct
// when a feature needs it.

#include <curl/curl.h>
#include <git2/common.h>

namespace mlops {

struct CurlApi
{
  decltype(&::curl_version_info) version_info;
};

struct GitApi
{
  decltype(&::git_libgit2_version) libgit2_version;
};

// The loaded library; throws Error(failure) naming the missing package when it cannot be loaded.
const CurlApi& curl();
const GitApi& git();

// The file names the binary loads ("libcurl.so.4"), fixed when it was built.
const char* curl_soname();
const char* git_soname();

} // namespace mlops
