#include "mlops/objects/object_store.hpp"

#include "mlops/core/error.hpp"
#include "mlops/store/statement.hpp"

#include <fmt/format.h>

namespace mlops::objects {

namespace fs = std::filesystem;

LinkMode parse_link_mode(std::string_view text)
{
  if (text == "auto") {
    return LinkMode::automatic;
  }
  if (text == "copy") {
    return LinkMode::copy;
  }
  if (text == "hardlink") {
    return LinkMode::hardlink;
  }
  if (text == "reflink") {
    return LinkMode::reflink;
  }
  throw Error(ExitCode::usage, fmt::format("--link {} is not a link mode, use auto, copy, hardlink or reflink", text));
}

ObjectStore::ObjectStore(const Home& home, store::Database& db) : m_home(home), m_db(db) {}

fs::path ObjectStore::object_path(const Digest& digest) const
{
  std::string hex = digest.hex();
  return m_home.objects_dir() / "sha256" / hex.substr(0, 2) / hex.substr(2);
}

namespace {

StoredObject read_object(store::Statement& row)
{
  return StoredObject{*Digest::parse(row.column_text(0)), row.column_text(1), row.column_int64(2),
                      row.column_text(3)};
}

} // namespace

StoredObject ObjectStore::resolve(std::string_view reference)
{
  std::string prefix = parse_digest_prefix(reference);
  // Hex digits sort below 'g', so this range is exactly the digests starting with the prefix.
  auto rows = m_db.prepare("SELECT digest, kind, size, created_at FROM objects "
                           "WHERE digest >= ?1 AND digest < ?1 || 'g' ORDER BY digest LIMIT 3");
  rows.bind(1, prefix);
  std::vector<StoredObject> matches;
  while (rows.step()) {
    matches.push_back(read_object(rows));
  }
  if (matches.empty()) {
    throw Error(ExitCode::not_found,
                fmt::format("no stored object matches `{}`, run `mlops artifact ls` to see them", reference));
  }
  if (matches.size() > 1) {
    throw Error(ExitCode::usage,
                fmt::format("`{}` is ambiguous: it matches {}, {}{}; give more digits", reference,
                            matches[0].digest.hex(), matches[1].digest.hex(),
                            matches.size() > 2 ? " and more" : ""));
  }
  return matches.front();
}

std::vector<StoredObject> ObjectStore::list()
{
  std::vector<StoredObject> objects;
  auto rows = m_db.prepare("SELECT digest, kind, size, created_at FROM objects ORDER BY created_at, digest");
  while (rows.step()) {
    objects.push_back(read_object(rows));
  }
  return objects;
}

std::vector<Digest> ObjectStore::stored_digests()
{
  std::vector<Digest> digests;
  for (auto rows = m_db.prepare("SELECT digest FROM objects ORDER BY digest"); rows.step();) {
    if (auto digest = Digest::parse(rows.column_text(0))) {
      digests.push_back(*digest);
    }
  }
  return digests;
}

std::vector<ObjectReference> ObjectStore::references_to(const Digest& digest)
{
  std::vector<ObjectReference> references;
  auto rows = m_db.prepare("SELECT kind, owner FROM object_refs WHERE digest = ? ORDER BY kind, owner");
  rows.bind(1, digest.hex());
  while (rows.step()) {
    references.push_back(ObjectReference{rows.column_text(0), rows.column_text(1)});
  }
  return references;
}

} // namespace mlops::objects
