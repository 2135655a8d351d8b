#pragma once
// libcurl and libgit2, loaded with dlopen on first use instead of linked: linking them costs every
// command about 5 ms of start-up, because their dependency chains (gnutls, kerberos, ldap,
// mbedtls, ssh2...) add some 35 libraries, while only HTTP to workers and git lineage use them.
// Each API struct holds the functions mlops calls, with their real types; callers use them like
// the library's own functions: `curl().version_info(CURLVERSION_NOW)`. A function joins its
// struct when a feature needs it.

#include <curl/curl.h>
#include <git2.h>

namespace mlops {

struct CurlApi
{
  decltype(&::curl_version_info) version_info;
  decltype(&::curl_easy_init) easy_init;
  decltype(&::curl_easy_cleanup) easy_cleanup;
  decltype(&::curl_easy_setopt) easy_setopt;
  decltype(&::curl_easy_perform) easy_perform;
  decltype(&::curl_easy_getinfo) easy_getinfo;
  decltype(&::curl_easy_strerror) easy_strerror;
  decltype(&::curl_slist_append) slist_append;
  decltype(&::curl_slist_free_all) slist_free_all;
  decltype(&::curl_multi_init) multi_init;
  decltype(&::curl_multi_cleanup) multi_cleanup;
  decltype(&::curl_multi_add_handle) multi_add_handle;
  decltype(&::curl_multi_remove_handle) multi_remove_handle;
  decltype(&::curl_multi_perform) multi_perform;
  decltype(&::curl_multi_poll) multi_poll;
  decltype(&::curl_multi_info_read) multi_info_read;
};

struct GitApi
{
  decltype(&::git_libgit2_version) libgit2_version;
  decltype(&::git_libgit2_init) libgit2_init;
  decltype(&::git_error_last) error_last;
  decltype(&::git_repository_open_ext) repository_open_ext;
  decltype(&::git_repository_free) repository_free;
  decltype(&::git_repository_workdir) repository_workdir;
  decltype(&::git_repository_head) repository_head;
  decltype(&::git_repository_head_unborn) repository_head_unborn;
  decltype(&::git_reference_free) reference_free;
  decltype(&::git_reference_is_branch) reference_is_branch;
  decltype(&::git_reference_shorthand) reference_shorthand;
  decltype(&::git_reference_target) reference_target;
  decltype(&::git_oid_tostr_s) oid_tostr_s;
  decltype(&::git_status_list_new) status_list_new;
  decltype(&::git_status_list_entrycount) status_list_entrycount;
  decltype(&::git_status_list_free) status_list_free;
  decltype(&::git_remote_lookup) remote_lookup;
  decltype(&::git_remote_url) remote_url;
  decltype(&::git_remote_free) remote_free;
};

// The loaded library; throws Error(failure) naming the missing package when it cannot be loaded.
const CurlApi& curl();
const GitApi& git();

} // namespace mlops
