#include "mlops/store/git_columns.hpp"

namespace mlops::store {

std::optional<GitState> read_git_columns(const Statement& row, int first)
{
  if (row.column_is_null(first + 3)) {
    return std::nullopt;
  }
  GitState git;
  git.commit = row.column_optional_text(first);
  git.branch = row.column_optional_text(first + 1);
  git.dirty = row.column_int64(first + 2) != 0;
  git.path = row.column_text(first + 3);
  git.remote = row.column_optional_text(first + 4);
  return git;
}

Statement& bind_git_columns(Statement& statement, int first, const std::optional<GitState>& git)
{
  if (!git) {
    for (int i = 0; i < git_column_count; ++i) {
      statement.bind(first + i, nullptr);
    }
    return statement;
  }
  return statement.bind(first, git->commit)
    .bind(first + 1, git->branch)
    .bind(first + 2, std::int64_t{git->dirty})
    .bind(first + 3, git->path)
    .bind(first + 4, git->remote);
}

} // namespace mlops::store
