#include "mlops/core/git_state.hpp"

#include <doctest/doctest.h>

using namespace mlops;

// git_state_of itself is tested against real repositories made with git (tests/cli/test_data.py).
TEST_CASE("mlops::url_without_credentials")
{
  CHECK(url_without_credentials("https://user:token@example.com/team/repo.git") == "https://example.com/team/repo.git");
  CHECK(url_without_credentials("https://token@example.com/repo") == "https://example.com/repo");
  CHECK(url_without_credentials("https://example.com/a@b/repo") == "https://example.com/a@b/repo");  // '@' in the path stays
  CHECK(url_without_credentials("ssh://git@example.com:22/repo") == "ssh://example.com:22/repo");
  CHECK(url_without_credentials("git@github.com:team/repo.git") == "git@github.com:team/repo.git");
  CHECK(url_without_credentials("/srv/git/repo") == "/srv/git/repo");
}
