#include "mlops/core/on_demand_libraries.hpp"

#include "mlops/core/error.hpp"
#include "mlops/util/shared_library.hpp"

#include <fmt/format.h>

#include <memory>

namespace mlops {

namespace {

std::unique_ptr<util::SharedLibrary> load(const char* soname, const char* package)
{
  try {
    return std::make_unique<util::SharedLibrary>(soname);
  } catch (const std::exception& error) {
    throw Error(ExitCode::failure,
                fmt::format("cannot load {} ({}), install the Debian package {}", soname,
                            error.what(), package));
  }
}

} // namespace

const CurlApi& curl()
{
  // Function-local statics: loaded once, thread-safe, and never when no command asks.
  static const auto library = load(MLOPS_LIBCURL_SONAME, "libcurl4");
  static const CurlApi api = [] {
    CurlApi functions{};
    library->bind(functions.version_info, "curl_version_info");
    library->bind(functions.easy_init, "curl_easy_init");
    library->bind(functions.easy_cleanup, "curl_easy_cleanup");
    library->bind(functions.easy_setopt, "curl_easy_setopt");
    library->bind(functions.easy_perform, "curl_easy_perform");
    library->bind(functions.easy_getinfo, "curl_easy_getinfo");
    library->bind(functions.easy_strerror, "curl_easy_strerror");
    library->bind(functions.slist_append, "curl_slist_append");
    library->bind(functions.slist_free_all, "curl_slist_free_all");
    library->bind(functions.multi_init, "curl_multi_init");
    library->bind(functions.multi_cleanup, "curl_multi_cleanup");
    library->bind(functions.multi_add_handle, "curl_multi_add_handle");
    library->bind(functions.multi_remove_handle, "curl_multi_remove_handle");
    library->bind(functions.multi_perform, "curl_multi_perform");
    library->bind(functions.multi_poll, "curl_multi_poll");
    library->bind(functions.multi_info_read, "curl_multi_info_read");
    // Before any other thread exists (the load generator's): curl's global set-up is not
    // thread-safe.
    decltype(&::curl_global_init) global_init = nullptr;
    library->bind(global_init, "curl_global_init");
    global_init(CURL_GLOBAL_DEFAULT);
    return functions;
  }();
  return api;
}

const GitApi& git()
{
  static const auto library = load(MLOPS_LIBGIT2_SONAME, "libgit2-1.5");
  static const GitApi api = [] {
    GitApi functions{};
    library->bind(functions.libgit2_version, "git_libgit2_version");
    library->bind(functions.libgit2_init, "git_libgit2_init");
    library->bind(functions.error_last, "git_error_last");
    library->bind(functions.repository_open_ext, "git_repository_open_ext");
    library->bind(functions.repository_free, "git_repository_free");
    library->bind(functions.repository_workdir, "git_repository_workdir");
    library->bind(functions.repository_head, "git_repository_head");
    library->bind(functions.repository_head_unborn, "git_repository_head_unborn");
    library->bind(functions.reference_free, "git_reference_free");
    library->bind(functions.reference_is_branch, "git_reference_is_branch");
    library->bind(functions.reference_shorthand, "git_reference_shorthand");
    library->bind(functions.reference_target, "git_reference_target");
    library->bind(functions.oid_tostr_s, "git_oid_tostr_s");
    library->bind(functions.status_list_new, "git_status_list_new");
    library->bind(functions.status_list_entrycount, "git_status_list_entrycount");
    library->bind(functions.status_list_free, "git_status_list_free");
    library->bind(functions.remote_lookup, "git_remote_lookup");
    library->bind(functions.remote_url, "git_remote_url");
    library->bind(functions.remote_free, "git_remote_free");
    functions.libgit2_init();
    return functions;
  }();
  return api;
}

} // namespace mlops
