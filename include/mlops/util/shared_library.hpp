#pragma once
// A shared library opened at run time with dlopen, closed when the object dies.

#include <string>

namespace mlops::util {

class SharedLibrary
{
public:
  // Throws std::runtime_error with dlerror()'s reason when the library cannot be loaded.
  explicit SharedLibrary(const std::string& soname);
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;
  ~SharedLibrary();

  // The address of `name`; throws std::runtime_error when the library lacks it.
  void* symbol(const char* name) const;

  // Sets `pointer` to the function `name`, keeping its declared type.
  template <typename Function> void bind(Function*& pointer, const char* name) const
  {
    pointer = reinterpret_cast<Function*>(symbol(name));
  }

private:
  std::string m_soname;
  void* m_handle;
};

} // namespace mlops::util
