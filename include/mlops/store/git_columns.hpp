#pragma once
// The git lineage columns that datasets and runs share, always in this order:
// git_commit, git_branch, git_dirty, git_path, git_remote. git_path is NULL exactly when there
// was no repository.

#include "mlops/core/git_state.hpp"
#include "mlops/store/statement.hpp"

#include <optional>

namespace mlops::store {

inline constexpr int git_column_count = 5;

// The lineage read from columns first..first+4 of `row`; nullopt when there was no repository.
std::optional<GitState> read_git_columns(const Statement& row, int first);

// Binds the lineage to parameters first..first+4 (all NULL without a repository).
Statement& bind_git_columns(Statement& statement, int first, const std::optional<GitState>& git);

} // namespace mlops::store
