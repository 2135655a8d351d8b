#include "mlops/deploy/deployments.hpp"

#include "mlops/store/database.hpp"
#include "mlops/store/migrations.hpp"
#include "mlops/store/statement.hpp"

#include "expect_error.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

using namespace mlops;
using namespace mlops::deploy;
using mlops::test::error_message;
using mlops::test::mentions;

namespace {

// A rollout column as the first version with deployments wrote it: no abort_reason yet.
const char* const first_version_rollout =
  R"({"analysis":null,"failure_limit":0,"failures":0,"forced":false,"from_service":"web-v1","from_version":1,)"
  R"("inconclusive":0,"pre_analysis":null,"ready_timeout_ms":60000,"sample_body":"","scale_down_delay_ms":0,)"
  R"("set_alias":null,"started_at":"2025-11-01T10:00:00.000000Z","step":0,"steps":["100"],"strategy":"bluegreen",)"
  R"("to_service":"web-v2","to_version":2})";

Deployment stable_deployment()
{
  Deployment d;
  d.name = "web";
  d.model = "churn";
  d.host = "127.0.0.1";
  d.stable_version = 1;
  d.stable_service = "web-v1";
  d.created_at = d.updated_at = "2025-11-01T09:00:00.000000Z";
  return d;
}

void set_column(store::Database& db, const char* column, const char* value)
{
  db.prepare(std::string("UPDATE deployments SET phase = 'progressing', ") + column + " = ? WHERE name = 'web'")
    .bind(1, std::string(value))
    .run();
}

} // namespace

TEST_CASE("Deployments: the rollout columns")
{
  test::TempDir dir;
  auto db = store::Database::open(dir.path() / "mlops.db", store::DatabaseOptions{.create = true});
  store::migrate(db);
  Deployments deployments(db);
  deployments.insert(stable_deployment(), "created");

  SUBCASE("a stable row has none")
  {
    auto d = deployments.get("web");
    CHECK_FALSE(d.rollout);
    CHECK_FALSE(d.last_rollout);
  }
  SUBCASE("a row of the first version loads, and its compare-and-set holds")
  {
    set_column(db, "rollout", first_version_rollout);
    auto d = deployments.get("web");
    REQUIRE(d.rollout);
    CHECK(d.rollout->to_version == 2);
    CHECK_FALSE(d.rollout->abort_reason);
    auto next = d;
    next.phase = "aborting";
    next.rollout->abort_reason = "aborted by `mlops deploy abort`";
    CHECK(deployments.transition(d, next, "aborted"));
    CHECK(deployments.get("web").rollout->abort_reason == "aborted by `mlops deploy abort`");
    CHECK_FALSE(deployments.transition(d, next, "aborted again"));  // the row moved since `d`
    auto events = deployments.events("web");
    CHECK(events.back().step == 0);
  }
  SUBCASE("a rollout that is not one is an integrity error naming the deployment")
  {
    set_column(db, "rollout", R"({"strategy":"canary"})");
    auto message = error_message(ExitCode::integrity, [&] { deployments.get("web"); });
    CHECK(mentions(message, "'web'"));
    // ls and rm --force read it without its rollouts.
    auto d = deployments.get("web", Reading::without_rollouts);
    CHECK((d.phase == "progressing" && !d.rollout && d.stable_service == "web-v1"));
    CHECK(deployments.list(Reading::without_rollouts).size() == 1);
  }
  SUBCASE("a rollout phase without a rollout is an integrity error")
  {
    db.exec("UPDATE deployments SET phase = 'progressing' WHERE name = 'web'");
    auto message = error_message(ExitCode::integrity, [&] { deployments.list(); });
    CHECK(mentions(message, "progressing"));
  }
}
