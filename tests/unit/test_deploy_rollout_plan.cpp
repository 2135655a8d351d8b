#include "mlops/deploy/rollout_plan.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using namespace mlops::deploy;

namespace {

// A canary's `deployments.rollout` text as mlops writes it, paused at its second step.
const char* const canary_row = R"({
  "abort_reason": null,
  "analysis": {"duration_ms": 30000, "max_error_rate": 0.01, "max_p99_ms": 250.0, "min_requests": 20},
  "failure_limit": 2, "failures": 1, "forced": false, "from_service": "web-v1", "from_version": 1,
  "inconclusive": 0, "pre_analysis": null, "ready_timeout_ms": 60000, "sample_body": "",
  "scale_down_delay_ms": 30000, "set_alias": "prod", "started_at": "2025-11-25T09:00:00.000000Z",
  "step": 1, "steps": ["10", "pause", "50", "100"], "strategy": "canary", "to_service": "web-v2",
  "to_version": 2})";

} // namespace

TEST_CASE("Rollout::from_json and to_json keep a row as it was written")
{
  auto row = nlohmann::json::parse(canary_row);
  auto rollout = Rollout::from_json(row);
  CHECK(rollout.strategy == "canary");
  CHECK(rollout.to_version == 2);
  CHECK(rollout.to_service == "web-v2");
  CHECK(rollout.step == 1);
  CHECK(rollout.failures == 1);
  REQUIRE(rollout.analysis);
  CHECK(rollout.analysis->max_p99_ms == 250.0);
  CHECK_FALSE(rollout.pre_analysis);
  CHECK(rollout.scale_down_delay == 30s);
  CHECK(rollout.set_alias == "prod");
  CHECK_FALSE(rollout.abort_reason);
  // The same keys, types and nulls: the text mlops writes back, and `deploy status --json` prints.
  CHECK(rollout.to_json() == row);
  CHECK(rollout.to_json().dump() == row.dump());
}

TEST_CASE("Rollout::from_json reads rows of earlier versions")
{
  auto row = nlohmann::json::parse(canary_row);
  SUBCASE("the first version wrote no abort_reason before aborting")
  {
    row.erase("abort_reason");
    auto rollout = Rollout::from_json(row);
    CHECK_FALSE(rollout.abort_reason);
    CHECK(rollout.to_json()["abort_reason"].is_null());  // written back as the schema has it
  }
  SUBCASE("sample_body and ready_timeout_ms were optional to read")
  {
    row.erase("sample_body");
    row.erase("ready_timeout_ms");
    auto rollout = Rollout::from_json(row);
    CHECK(rollout.sample_body.empty());
    CHECK(rollout.ready_timeout == 60s);
  }
}

TEST_CASE("Rollout::from_json refuses what is not a rollout")
{
  auto row = nlohmann::json::parse(canary_row);
  SUBCASE("a key missing") { row.erase("to_version"); }
  SUBCASE("a wrong type") { row["step"] = "1"; }
  SUBCASE("criteria that are not") { row["analysis"] = {{"duration_ms", 1000}}; }
  SUBCASE("not an object") { row = nlohmann::json::array(); }
  CHECK_THROWS_AS(Rollout::from_json(row), nlohmann::json::exception);
}

TEST_CASE("FinishedRollout is the rollout plus how it ended, in one object")
{
  FinishedRollout finished{Rollout::from_json(nlohmann::json::parse(canary_row)), "rolled back",
                           "step 2: analysis failed", "2025-11-25T09:05:00.000000Z"};
  auto row = finished.to_json();
  CHECK(row["outcome"] == "rolled back");
  CHECK(row["reason"] == "step 2: analysis failed");
  CHECK(row["ended_at"] == "2025-11-25T09:05:00.000000Z");
  CHECK(row["to_version"] == 2);
  CHECK(row.size() == nlohmann::json::parse(canary_row).size() + 3);
  CHECK(FinishedRollout::from_json(nlohmann::json::parse(row.dump())) == finished);
  row.erase("outcome");
  CHECK_THROWS_AS(FinishedRollout::from_json(row), nlohmann::json::exception);
}

TEST_CASE("Rollout::weight_at carries the last weight through pauses and past the end")
{
  auto rollout = Rollout::from_json(nlohmann::json::parse(canary_row));
  CHECK(rollout.weight_at(0) == 10);
  CHECK(rollout.weight_at(1) == 10);  // the pause holds the weight before it
  CHECK(rollout.weight_at(2) == 50);
  CHECK(rollout.weight_at(3) == 100);
  CHECK(rollout.weight_at(4) == 100);
  CHECK(rollout.current_weight() == 10);
  rollout.steps = {"pause", "100"};  // a --manual blue-green
  CHECK(rollout.weight_at(0) == 0);
}

TEST_CASE("Rollout::past_last_step")
{
  auto rollout = Rollout::from_json(nlohmann::json::parse(canary_row));
  rollout.step = 3;
  CHECK_FALSE(rollout.past_last_step());
  rollout.step = 4;
  CHECK(rollout.past_last_step());
}

TEST_CASE("Rollout::operator== compares every field")
{
  auto stored = Rollout::from_json(nlohmann::json::parse(canary_row));
  CHECK(Rollout::from_json(stored.to_json()) == stored);
  auto changed = stored;
  SUBCASE("progress") { changed.inconclusive = 1; }
  SUBCASE("the criteria") { changed.analysis->max_p99_ms.reset(); }
  SUBCASE("the abort reason") { changed.abort_reason = "aborted by `mlops deploy abort`"; }
  SUBCASE("the alias") { changed.set_alias.reset(); }
  CHECK_FALSE(changed == stored);
}
