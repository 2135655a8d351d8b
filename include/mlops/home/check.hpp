#pragma once
// `mlops db check`: a read-only health report of a home. It changes nothing; each problem says
// what is wrong and what to do about it.

#include "mlops/home/home.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace mlops {

struct HomeCheck
{
  int schema_version = 0;
  int latest_version = 0;
  std::string journal_mode;
  std::int64_t database_bytes = 0;
  std::int64_t object_count = 0;      // files under objects/
  std::int64_t stale_tmp_files = 0;   // leftovers of interrupted writes (removed by gc)
  std::vector<std::string> problems;  // empty when the home is healthy

  bool healthy() const { return problems.empty(); }
};

// Runs SQLite's integrity and foreign-key checks, compares the recorded migrations with the ones
// this binary embeds, and checks the layout of the object store. Unlike other commands it applies
// no pending migration. Problems it can describe go into the report; it throws Error only when it
// cannot look at all: the database is missing (not_found), unreadable (failure, integrity), newer
// than this binary (conflict), or the user interrupted.
HomeCheck check_home(const Home& home, const store::DatabaseOptions& options = {});

} // namespace mlops
