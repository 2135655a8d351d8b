#include "mlops/util/shared_library.hpp"

#include <dlfcn.h>

#include <stdexcept>

namespace mlops::util {

SharedLibrary::SharedLibrary(const std::string& soname) : m_soname(soname)
{
  // RTLD_LAZY: resolve functions on first call, as the dynamic linker does for linked libraries.
  m_handle = dlopen(soname.c_str(), RTLD_LAZY | RTLD_LOCAL);
  if (!m_handle) {
    const char* reason = dlerror();
    throw std::runtime_error(reason ? reason : soname + " cannot be loaded");
  }
}

SharedLibrary::~SharedLibrary()
{
  dlclose(m_handle);
}

void* SharedLibrary::symbol(const char* name) const
{
  dlerror();
  void* address = dlsym(m_handle, name);
  if (!address) {
    const char* reason = dlerror();
    throw std::runtime_error(reason ? reason : m_soname + " has no symbol " + name);
  }
  return address;
}

} // namespace mlops::util
