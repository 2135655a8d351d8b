#include "mlops/objects/sha256.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/util/file_descriptor.hpp"
#include "mlops/objects/store_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/std.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mlops::objects {

struct Sha256::Context
{
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Context() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : m_context(std::make_unique<Context>())
{
  if (!m_context->ctx || EVP_DigestInit_ex(m_context->ctx, EVP_sha256(), nullptr) != 1) {
    throw Error(ExitCode::failure, "OpenSSL cannot compute SHA-256 (EVP_DigestInit_ex failed)");
  }
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, size_t size)
{
  EVP_DigestUpdate(m_context->ctx, data, size);
}

Digest Sha256::finish()
{
  Digest digest;
  unsigned int length = 0;
  EVP_DigestFinal_ex(m_context->ctx, digest.bytes.data(), &length);
  EVP_DigestInit_ex(m_context->ctx, EVP_sha256(), nullptr);
  return digest;
}

Digest sha256(std::string_view data)
{
  Sha256 hasher;
  hasher.update(data.data(), data.size());
  return hasher.finish();
}

FileIdentity FileIdentity::of(const struct stat& status)
{
  constexpr std::int64_t billion = 1'000'000'000;
  return FileIdentity{
    static_cast<std::uint64_t>(status.st_dev),
    static_cast<std::uint64_t>(status.st_ino),
    static_cast<std::int64_t>(status.st_size),
    status.st_mtim.tv_sec * billion + status.st_mtim.tv_nsec,
    status.st_ctim.tv_sec * billion + status.st_ctim.tv_nsec,
  };
}

namespace {

[[noreturn]] void throw_io(std::string_view doing, std::string_view what)
{
  throw Error(ExitCode::failure, fmt::format("cannot {} {}: {}", doing, what, std::strerror(errno)));
}

FileIdentity identity_of(int fd, std::string_view what)
{
  struct stat status = {};
  if (::fstat(fd, &status) != 0) {
    throw_io("inspect", what);
  }
  return FileIdentity::of(status);
}

} // namespace

HashedStream hash_stream(int fd, std::string_view what, std::vector<char>& buffer, int copy_to, std::int64_t limit)
{
  buffer.resize(hash_buffer_size);
  Sha256 hasher;
  std::int64_t total = 0;
  while (limit < 0 || total < limit) {
    ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR) {
        throw_if_interrupted();
        continue;
      }
      throw_io("read", what);
    }
    if (got == 0) {
      break;
    }
    total += got;
    hasher.update(buffer.data(), static_cast<size_t>(got));
    if (copy_to >= 0) {
      write_fully(copy_to, buffer.data(), static_cast<size_t>(got), fmt::format("a copy of {}", what));
    }
  }
  return HashedStream{hasher.finish(), total};
}

HashedFile hash_open_file(int fd, std::string_view what, std::vector<char>& buffer, int copy_to,
                          const FileIdentity* listed)
{
  const FileIdentity before = listed ? *listed : identity_of(fd, what);
  if (before.size > static_cast<std::int64_t>(hash_buffer_size)) {
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  Digest digest = hash_stream(fd, what, buffer, copy_to, listed ? before.size : -1).digest;
  const FileIdentity after = identity_of(fd, what);
  if (after != before) {
    throw Error(ExitCode::failure,
                fmt::format("{} changed while it was being read, retry once nothing writes to it", what));
  }
  return HashedFile{digest, after};
}

HashedFile hash_file(const std::string& path, std::vector<char>& buffer, const FileIdentity* listed)
{
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // O_NOATIME needs ownership.
  }
  if (fd < 0) {
    if (errno == ENOENT) {
      throw Error(ExitCode::not_found, fmt::format("\"{}\" does not exist", path));
    }
    throw_io("open", fmt::format("\"{}\"", path));
  }
  util::FileDescriptor owned(fd);
  return hash_open_file(fd, path, buffer, -1, listed);
}

} // namespace mlops::objects
