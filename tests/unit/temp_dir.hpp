#pragma once
// A directory under the system temp dir, removed with everything in it when the test ends.

#include <cstdlib>
#include <filesystem>
#include <string>

namespace mlops::test {

class TempDir
{
public:
  TempDir()
  {
    std::string pattern = (std::filesystem::temp_directory_path() / "mlops-unit-XXXXXX").string();
    m_path = mkdtemp(pattern.data());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir()
  {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
  const std::filesystem::path& path() const { return m_path; }

private:
  std::filesystem::path m_path;
};

} // namespace mlops::test
