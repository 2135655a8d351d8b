#pragma once
// What this binary is and what it was built with, for `mlops version` and bug reports.

#include <string>
#include <string_view>
#include <vector>

namespace mlops {

struct LibraryVersion
{
  std::string name;
  std::string version;
  // True when `version` is what the library running in this process reports. False for a library
  // loaded on demand that was not loaded: `version` is then the one mlops was built against.
  bool loaded;
};

std::string_view mlops_version();
bool cuda_compiled_in();

// SQLite and OpenSSL as they report themselves at run time (they can differ from the headers);
// libgit2 and libcurl too when `load_on_demand`, else their build-time versions.
std::vector<LibraryVersion> library_versions(bool load_on_demand);

} // namespace mlops
