#pragma once
// The content-addressed object store: .mlops/objects/sha256/ab/cdef... holds each object once,
// read-only, named by the SHA-256 of its content. The `objects` table lists what is stored; the
// `object_refs` table lists what keeps each object alive (gc removes the rest).
//
// Durability: objects are written to .mlops/tmp as unnamed files (O_TMPFILE), flushed to disk in
// one batch (syncfs), linked under their final names, flushed again, and only then recorded in
// the database. So no object is ever visible
// half-written under its final name, and no row points at an object that is not durably stored.
// A crash leaves at most files in tmp/ and unrecorded objects, which `gc` removes.
//
// Concurrency: commands that read or add objects hold a shared lock (flock on objects/lock);
// gc holds it exclusively, so it never deletes an object another command is about to use.

#include "mlops/home/home.hpp"
#include "mlops/objects/hash_paths.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mlops {
class Progress;
}

namespace mlops::objects {

class HashCache;

// How a file gets into or out of the store. `auto`: a reflink (copy-on-write clone, instant on
// btrfs and xfs), else a copy. A hard link is never automatic: it shares the object's inode, so
// whoever can chmod the file (its owner, root) could change the stored object in place.
enum class LinkMode { automatic, copy, hardlink, reflink };

// Throws Error(usage) for anything but auto, copy, hardlink, reflink.
LinkMode parse_link_mode(std::string_view text);

struct StoredObject
{
  Digest digest;
  std::string kind;  // "blob" or "tree"
  std::int64_t size = 0;
  std::string created_at;
};

struct ObjectReference
{
  std::string kind;   // "artifact", "tree", later "dataset", "run", "model"
  std::string owner;  // the path added, the tree digest...
};

struct AddResult
{
  std::vector<HashedTarget> targets;
  std::size_t objects_written = 0;   // new objects
  std::size_t objects_existing = 0;  // already stored: nothing written
  std::uint64_t bytes_written = 0;
};

struct AddOptions
{
  LinkMode link = LinkMode::automatic;
  unsigned jobs = 1;
  HashCache* cache = nullptr;
  Progress* progress = nullptr;
  // What pins the added targets: a reference of this kind, owned by each target's absolute path.
  // Empty: no such pin; then `in_transaction` must pin what it keeps.
  std::string ref_kind = "artifact";
  bool skip_metadata = false;  // leave .git and .mlops directories out of trees
  // Runs inside the transaction that records the objects, so that whatever it records (a dataset
  // version, say) commits with them or not at all.
  std::function<void(const AddResult&)> in_transaction;
};

struct VerifyProblem
{
  Digest digest;
  std::string problem;  // "missing", "corrupt: content hashes to ...", "unreadable: ..."
};

struct VerifyReport
{
  std::size_t checked = 0;
  std::vector<VerifyProblem> problems;
};

struct GcReport
{
  std::vector<StoredObject> removed;  // unreferenced objects (would be removed with dry_run)
  std::uint64_t bytes = 0;
  std::size_t unrecorded_files = 0;   // object files without a row (left by a crash)
  std::size_t tmp_files = 0;          // stale files in tmp/
};

class ObjectStore
{
public:
  ObjectStore(const Home& home, store::Database& db);

  std::filesystem::path object_path(const Digest& digest) const;
  std::filesystem::path objects_dir() const { return m_home.objects_dir(); }

  // Stores the files and trees of `paths` and pins them (see AddOptions). Files whose digest is
  // cached and whose object exists are not read. Throws Error.
  AddResult add(const std::vector<std::filesystem::path>& paths, const AddOptions& options);

  // The object a digest or unique prefix of 8+ hex digits names. Throws Error: usage when
  // malformed or ambiguous (listing candidates), not_found when nothing matches.
  StoredObject resolve(std::string_view reference);

  std::vector<StoredObject> list();
  std::vector<ObjectReference> references_to(const Digest& digest);

  // Writes the object to `out` (a file, or a directory for a tree), verifying every byte against
  // its digest before `out` appears. Throws Error: conflict when `out` exists and not `force`,
  // integrity when the object is missing or corrupt (then `out` is left as it was).
  void get(const StoredObject& object, const std::filesystem::path& out, LinkMode mode, bool force);

  // Writes a blob's bytes (or a tree's listing) to stdout; Error(integrity) if they do not match.
  void cat(const StoredObject& object);

  // An object's bytes, checked against its digest (Error(integrity) when missing or corrupt).
  std::string read(const Digest& digest) const;
  // Copies an object into `out_fd` while hashing it; Error(integrity) when it does not match
  // (then `out_fd` holds garbage the caller must discard).
  void copy_verified(const Digest& digest, int out_fd) const;
  // Every recorded digest, sorted: one query for membership tests over many files.
  std::vector<Digest> stored_digests();

  // Re-hashes the given objects (all when empty, listed under the store's lock) on `jobs` threads.
  // A corrupt object is moved aside into tmp/, so nothing serves it again and adding the original
  // file stores it anew.
  VerifyReport verify(const std::vector<StoredObject>& objects, unsigned jobs);

  // Removes objects nothing refers to (directly, or through a referenced tree), object files
  // without a row, and everything in tmp/. With `dry_run` only reports.
  GcReport gc(bool dry_run);

private:
  const Home& m_home;
  store::Database& m_db;
};

} // namespace mlops::objects
