#pragma once
// SHA-256 through OpenSSL's EVP interface, which uses the CPU's SHA instructions (about 2 GB/s per
// core here, four times coreutils' sha256sum), and the file reading around it.

#include "mlops/objects/digest.hpp"

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <memory>
#include <string_view>
#include <vector>

namespace mlops::objects {

class Sha256
{
public:
  Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  ~Sha256();

  void update(const void* data, size_t size);
  Digest finish();  // The object can be used again afterwards, from empty.

private:
  struct Context;
  std::unique_ptr<Context> m_context;
};

Digest sha256(std::string_view data);

// What identifies a file's content without reading it: when none of these changed, neither did
// the content (the hash cache relies on this; ctime catches a restored mtime).
struct FileIdentity
{
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;

  bool operator==(const FileIdentity&) const = default;
  static FileIdentity of(const struct stat& status);
};

struct HashedFile
{
  Digest digest;
  FileIdentity identity;
};

// Reads the open file `fd` to its end (or `limit` bytes, when >= 0) with large sequential reads
// into `buffer`, hashing it and, when `copy_to` >= 0, writing the same bytes there. Returns the
// digest and the byte count. It checks nothing else: right for stored objects, whose digest is
// the check, and whose ctime moves whenever a checkout hard-links them.
struct HashedStream
{
  Digest digest;
  std::int64_t size = 0;
};
HashedStream hash_stream(int fd, std::string_view what, std::vector<char>& buffer, int copy_to = -1,
                         std::int64_t limit = -1);

// hash_stream for files outside the store, which may change under us. Throws Error(failure) when the file changed
// while it was read (its identity before and after differ) or on an I/O error; `what` names the
// file in messages. `listed` is the identity the caller already has (from a directory listing):
// it then serves as "before", saving an fstat, and reading stops at its size, saving the read
// that would only return end-of-file (growth still shows in the identity after).
HashedFile hash_open_file(int fd, std::string_view what, std::vector<char>& buffer, int copy_to = -1,
                          const FileIdentity* listed = nullptr);

// Opens and hashes the file at `path`. Throws Error: not_found when it does not exist, failure
// when it cannot be read or changes while it is read.
HashedFile hash_file(const std::string& path, std::vector<char>& buffer, const FileIdentity* listed = nullptr);

// The read buffer size: large enough for the kernel's read-ahead to keep the SHA units busy.
inline constexpr size_t hash_buffer_size = 1 << 20;

} // namespace mlops::objects
