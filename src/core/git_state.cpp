#include "mlops/core/git_state.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/on_demand_libraries.hpp"

#include <fmt/format.h>
#include <fmt/std.h>

#include <memory>

namespace mlops {

namespace fs = std::filesystem;

namespace {

// libgit2 handles, freed through the loaded library.
template <typename T> auto owned(T* handle, void (*free)(T*))
{
  return std::unique_ptr<T, void (*)(T*)>(handle, free);
}

[[noreturn]] void fail(const fs::path& path, const char* doing)
{
  const git_error* error = git().error_last();
  throw Error(ExitCode::failure, fmt::format("cannot read the git repository of {} ({}): {}", path, doing,
                                             error && error->message ? error->message : "unknown error"));
}

} // namespace

std::string url_without_credentials(const std::string& url)
{
  auto scheme = url.find("://");
  if (scheme == std::string::npos) {
    return url;  // scp-like "git@host:path": the user is not a secret
  }
  auto host = scheme + 3;
  auto end = url.find('/', host);
  auto at = url.rfind('@', end == std::string::npos ? url.size() : end);
  if (at == std::string::npos || at < host) {
    return url;
  }
  return url.substr(0, host) + url.substr(at + 1);
}

std::optional<GitState> git_state_of(const fs::path& given)
{
  const auto& api = git();
  std::error_code error;
  fs::path path = fs::weakly_canonical(fs::absolute(given), error);
  git_repository* raw = nullptr;
  int rc = api.repository_open_ext(&raw, path.c_str(), 0, nullptr);
  if (rc == GIT_ENOTFOUND) {
    return std::nullopt;
  }
  if (rc != 0) {
    fail(path, "open");
  }
  auto repository = owned(raw, api.repository_free);

  GitState state;
  const char* workdir = api.repository_workdir(repository.get());
  if (!workdir) {
    return std::nullopt;  // A bare repository holds no working files.
  }
  fs::path relative = path.lexically_relative(fs::weakly_canonical(workdir, error));
  state.path = relative.empty() ? "." : relative.string();

  if (api.repository_head_unborn(repository.get()) != 1) {
    git_reference* head_raw = nullptr;
    if (api.repository_head(&head_raw, repository.get()) != 0) {
      fail(path, "HEAD");
    }
    auto head = owned(head_raw, api.reference_free);
    if (const git_oid* target = api.reference_target(head.get())) {
      state.commit = api.oid_tostr_s(target);
    }
    if (api.reference_is_branch(head.get())) {
      state.branch = api.reference_shorthand(head.get());
    }
  }

  git_status_options options = GIT_STATUS_OPTIONS_INIT;
  options.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
  options.flags = GIT_STATUS_OPT_EXCLUDE_SUBMODULES;  // untracked files are not "dirty"
  git_status_list* status_raw = nullptr;
  if (api.status_list_new(&status_raw, repository.get(), &options) != 0) {
    fail(path, "status");
  }
  auto status = owned(status_raw, api.status_list_free);
  state.dirty = api.status_list_entrycount(status.get()) > 0;

  git_remote* remote_raw = nullptr;
  if (api.remote_lookup(&remote_raw, repository.get(), "origin") == 0) {
    auto remote = owned(remote_raw, api.remote_free);
    if (const char* url = api.remote_url(remote.get())) {
      state.remote = url_without_credentials(url);
    }
  }
  return state;
}

} // namespace mlops
