// ObjectStore::get and cat: objects out of the store, every byte checked against its digest.
#include "mlops/objects/object_store.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"
#include "mlops/objects/checksum_list.hpp"
#include "mlops/util/file_descriptor.hpp"
#include "mlops/objects/store_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/std.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace mlops::objects {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void corrupt(const Digest& digest)
{
  throw Error(ExitCode::integrity,
              fmt::format("stored object {} does not match its digest (it is corrupt), nothing was "
                          "written; run `mlops artifact verify --all`",
                          digest.hex()));
}

util::FileDescriptor open_object(const fs::path& path, const Digest& digest)
{
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    throw Error(ExitCode::integrity,
                fmt::format("stored object {} is missing from {}; run `mlops artifact verify --all`",
                            digest.hex(), path.parent_path().parent_path()));
  }
  if (fd < 0) {
    throw Error(ExitCode::failure, fmt::format("cannot read stored object {}: {}", digest.hex(), std::strerror(errno)));
  }
  return util::FileDescriptor(fd);
}

// Hashes (and optionally copies) an object's file, throwing when it does not match.
void check_object(const fs::path& path, const Digest& digest, int copy_to)
{
  thread_local std::vector<char> buffer;
  auto fd = open_object(path, digest);
  if (hash_stream(fd.get(), path.string(), buffer, copy_to).digest != digest) {
    corrupt(digest);
  }
}

std::string read_checked(const fs::path& path, const Digest& digest)
{
  std::string bytes;
  auto fd = open_object(path, digest);
  char chunk[65536];
  for (;;) {
    ssize_t got = ::read(fd.get(), chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {  // An I/O error is not corruption: say what it is.
      throw Error(ExitCode::failure, fmt::format("cannot read stored object {}: {}", digest.hex(), std::strerror(errno)));
    }
    if (got == 0) {
      break;
    }
    bytes.append(chunk, static_cast<size_t>(got));
  }
  if (sha256(bytes) != digest) {
    corrupt(digest);
  }
  return bytes;
}

// Writes one blob to `out` (which must not exist): a temporary file beside it, verified, renamed.
void materialize_blob(const fs::path& object, const Digest& digest, const fs::path& out, LinkMode mode, bool executable)
{
  fs::path dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  // A hard link shares the object's inode: anyone who can chmod it (its owner, root) could change
  // the stored object in place. So only when asked, and never for executables (the object's
  // mode cannot change).
  bool hardlink = mode == LinkMode::hardlink && !executable;
  if (hardlink) {
    check_object(object, digest, -1);
    TempFile name(dir, ".mlops-get-");  // Reserves a unique name for the link.
    name.close();
    ::unlink(name.path().c_str());
    if (::link(object.c_str(), name.path().c_str()) == 0) {
      name.rename_to(out);
      return;
    }
    if (mode == LinkMode::hardlink) {
      throw Error(ExitCode::failure, fmt::format("cannot hard-link {} from the store: {}", out, std::strerror(errno)));
    }
  }
  TempFile temp(dir, ".mlops-get-");
  bool cloned = mode != LinkMode::copy && ::ioctl(temp.fd(), FICLONE, open_object(object, digest).get()) == 0;
  if (mode == LinkMode::reflink && !cloned) {
    throw Error(ExitCode::failure, fmt::format("cannot reflink {}: {}; use --link copy or auto", out, std::strerror(errno)));
  }
  check_object(object, digest, cloned ? -1 : temp.fd());
  ::fchmod(temp.fd(), executable ? 0755 : 0644);
  temp.rename_to(out);
}

} // namespace

void ObjectStore::get(const StoredObject& object, const fs::path& given_out, LinkMode mode, bool force)
{
  StoreLock lock(m_home.objects_dir(), /*exclusive=*/false);
  // "out/" (as tab completion writes it) names out itself, never a place inside it.
  fs::path out = given_out.lexically_normal();
  if (!out.has_filename() && out.has_parent_path()) {
    out = out.parent_path();
  }
  std::error_code error;
  auto status = fs::symlink_status(out, error);
  bool exists = status.type() != fs::file_type::not_found;
  if (exists && !force) {
    throw Error(ExitCode::conflict, fmt::format("{} already exists, choose another OUT or pass --force to replace it", out));
  }
  if (object.kind == "blob" && !fs::is_directory(status)) {
    // Written beside OUT and renamed over it: a corrupt object leaves an existing OUT untouched.
    materialize_blob(object_path(object.digest), object.digest, out, mode, false);
    return;
  }
  // A tree (or a blob replacing a directory) is built beside OUT and swapped in only once it is
  // complete and verified: OUT is all or nothing.
  fs::path parent = fs::absolute(out).parent_path();
  std::string pattern = (parent / ".mlops-get-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) {
    throw Error(ExitCode::failure, fmt::format("cannot create a directory in {}: {}", parent, std::strerror(errno)));
  }
  fs::path staged = pattern;
  try {
    fs::path built = staged;
    if (object.kind == "blob") {
      built = staged / "blob";
      materialize_blob(object_path(object.digest), object.digest, built, mode, false);
    } else {
      for (const auto& entry : parse_manifest(read_checked(object_path(object.digest), object.digest))) {
        throw_if_interrupted();
        fs::path target = staged / entry.path;  // Safe: parse_manifest vetted every path.
        fs::create_directories(target.parent_path());
        if (entry.mode == mode_symlink) {
          fs::create_symlink(read_checked(object_path(entry.digest), entry.digest), target);
        } else {
          materialize_blob(object_path(entry.digest), entry.digest, target, mode, entry.mode == mode_executable);
        }
      }
      ::chmod(staged.c_str(), 0755);
    }
    if (exists) {
      fs::remove_all(out);
    }
    fs::rename(built, out);
    fs::remove_all(staged, error);  // Empty now for a blob; gone for a tree.
  } catch (...) {
    fs::remove_all(staged, error);
    throw;
  }
}

void ObjectStore::cat(const StoredObject& object)
{
  StoreLock lock(m_home.objects_dir(), /*exclusive=*/false);
  std::string bytes = read_checked(object_path(object.digest), object.digest);
  if (object.kind == "tree") {
    std::string listing;
    for (const auto& entry : parse_manifest(bytes)) {
      listing += format_checksum_line(entry.digest, entry.path);
    }
    bytes = std::move(listing);
  }
  std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  std::fflush(stdout);
}

std::string ObjectStore::read(const Digest& digest) const
{
  return read_checked(object_path(digest), digest);
}

void ObjectStore::copy_verified(const Digest& digest, int out_fd) const
{
  check_object(object_path(digest), digest, out_fd);
}

} // namespace mlops::objects
