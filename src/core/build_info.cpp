#include "mlops/core/build_info.hpp"

#include "mlops/core/on_demand_libraries.hpp"

#include <fmt/format.h>
#include <git2/version.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

namespace mlops {

std::string_view mlops_version()
{
  return MLOPS_VERSION;
}

bool cuda_compiled_in()
{
#ifdef MLOPS_WITH_CUDA
  return true;
#else
  return false;
#endif
}

std::vector<LibraryVersion> library_versions(bool load_on_demand)
{
  std::vector<LibraryVersion> versions = {
    {"sqlite", sqlite3_libversion(), true},
    {"openssl", OpenSSL_version(OPENSSL_VERSION_STRING), true},
  };
  if (load_on_demand) {
    int major = 0;
    int minor = 0;
    int patch = 0;
    git().libgit2_version(&major, &minor, &patch);
    versions.push_back({"libgit2", fmt::format("{}.{}.{}", major, minor, patch), true});
    versions.push_back({"libcurl", curl().version_info(CURLVERSION_NOW)->version, true});
  } else {
    versions.push_back({"libgit2", LIBGIT2_VERSION, false});
    versions.push_back({"libcurl", LIBCURL_VERSION, false});
  }
  return versions;
}

} // namespace mlops
