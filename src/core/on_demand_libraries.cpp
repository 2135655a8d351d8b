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
    return functions;
  }();
  return api;
}

} // namespace mlops
