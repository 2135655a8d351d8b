#pragma once
// A rollout as a deployment's row keeps it: its plan and progress while it is under way (the
// `rollout` column), and once it ended, the same with how it ended (`last_rollout`). The JSON
// forms are the columns' text and what `deploy status --json` prints
// (schemas/json/deploy-status.schema.json): every key is always there, null when it does not
// apply, so changing a field here changes that schema.

#include "mlops/deploy/analysis.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlops::deploy {

struct Rollout
{
  std::string strategy;  // canary, bluegreen or rollback
  std::int64_t from_version = 0;  // the stable version when it started
  std::string from_service;
  std::int64_t to_version = 0;
  std::string to_service;
  std::vector<std::string> steps;  // weights in percent, or "pause"
  std::int64_t step = 0;           // the index of the step under way
  std::optional<Criteria> analysis;      // of each step's window (canary), after the switch (blue-green)
  std::optional<Criteria> pre_analysis;  // blue-green, on synthetic requests to the new version alone
  int failure_limit = 0;  // failed analyses of one step tolerated before aborting
  int failures = 0;       // failed analyses of the step under way
  int inconclusive = 0;   // inconclusive windows in a row of the step under way
  std::chrono::milliseconds scale_down_delay{0};
  std::optional<std::string> set_alias;  // the registry alias moved to the new version on promotion
  std::string sample_body;  // the smoke test's request; empty: one built from the signature
  bool forced = false;      // deployed despite an incompatible input signature
  std::chrono::milliseconds ready_timeout{60'000};
  std::string started_at;
  std::optional<std::string> abort_reason;  // set on entering the aborting phase

  // The new version's weight in percent at step `index`: that of the last step up to it that is
  // not a pause (0 when there is none). An index past the last step counts as the last.
  int weight_at(std::int64_t index) const;
  int current_weight() const { return weight_at(step); }
  // Every step has passed: what is left is the promotion.
  bool past_last_step() const { return step >= std::ssize(steps); }

  nlohmann::json to_json() const;
  // Throws nlohmann::json::exception for a document that is not a rollout. Keys that rows of
  // earlier versions may lack (abort_reason, which the first one wrote only on aborting) read
  // as their defaults.
  static Rollout from_json(const nlohmann::json& document);

  // Equal when the JSON forms are: every field is stored, so this compares them all, which is
  // what the compare-and-set of Deployments::transition needs.
  bool operator==(const Rollout& other) const;
};

// A rollout that ended: its plan and progress as they were at the end, and how it ended.
struct FinishedRollout : Rollout
{
  std::string outcome;  // promoted (a `deploy rollback` too, promoting the old version again) or rolled back
  std::string reason;
  std::string ended_at;

  nlohmann::json to_json() const;
  static FinishedRollout from_json(const nlohmann::json& document);  // throws as Rollout::from_json

  bool operator==(const FinishedRollout& other) const = default;
};

} // namespace mlops::deploy
