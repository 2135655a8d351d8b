#pragma once
// libcurl and libgit2, loaded with dlopen on first use instead of linked: linking them costs every
// command about 5 ms of start-up, because their dependency chains (gnutls, kerberos, ldap,
// mbedtls, ssh2...) add some 35 libraries, while only HTTP to workers and git lineage use them.
// Each API struct holds the functions mlops calls, with their real types; callers use them like
// the library's own functions: `curl().version_info(CURLVERSION_NOW)`. A function joins its
// struct when a feature needs it.

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

} // namespace mlops
