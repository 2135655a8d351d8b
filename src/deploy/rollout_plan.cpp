#include "mlops/deploy/rollout_plan.hpp"

#include <algorithm>

namespace mlops::deploy {

namespace {

nlohmann::json criteria_json(const std::optional<Criteria>& criteria)
{
  return criteria ? criteria->to_json() : nlohmann::json();
}

std::optional<Criteria> criteria_from(const nlohmann::json& value)
{
  return value.is_null() ? std::nullopt : std::optional(Criteria::from_json(value));
}

nlohmann::json text_json(const std::optional<std::string>& text)
{
  return text ? nlohmann::json(*text) : nlohmann::json();
}

std::optional<std::string> text_from(const nlohmann::json& value)
{
  return value.is_null() ? std::nullopt : std::optional(value.get<std::string>());
}

} // namespace

int Rollout::weight_at(std::int64_t index) const
{
  for (auto i = std::min<std::int64_t>(index, std::ssize(steps) - 1); i >= 0; --i) {
    if (steps[static_cast<std::size_t>(i)] != "pause") {
      return std::stoi(steps[static_cast<std::size_t>(i)]);
    }
  }
  return 0;
}

nlohmann::json Rollout::to_json() const
{
  return {{"strategy", strategy},
          {"from_version", from_version},
          {"from_service", from_service},
          {"to_version", to_version},
          {"to_service", to_service},
          {"steps", steps},
          {"step", step},
          {"analysis", criteria_json(analysis)},
          {"pre_analysis", criteria_json(pre_analysis)},
          {"failure_limit", failure_limit},
          {"failures", failures},
          {"inconclusive", inconclusive},
          {"scale_down_delay_ms", scale_down_delay.count()},
          {"set_alias", text_json(set_alias)},
          {"sample_body", sample_body},
          {"forced", forced},
          {"ready_timeout_ms", ready_timeout.count()},
          {"started_at", started_at},
          {"abort_reason", text_json(abort_reason)}};
}

Rollout Rollout::from_json(const nlohmann::json& document)
{
  Rollout rollout;
  rollout.strategy = document.at("strategy").get<std::string>();
  rollout.from_version = document.at("from_version").get<std::int64_t>();
  rollout.from_service = document.at("from_service").get<std::string>();
  rollout.to_version = document.at("to_version").get<std::int64_t>();
  rollout.to_service = document.at("to_service").get<std::string>();
  rollout.steps = document.at("steps").get<std::vector<std::string>>();
  rollout.step = document.at("step").get<std::int64_t>();
  rollout.analysis = criteria_from(document.at("analysis"));
  rollout.pre_analysis = criteria_from(document.at("pre_analysis"));
  rollout.failure_limit = document.at("failure_limit").get<int>();
  rollout.failures = document.at("failures").get<int>();
  rollout.inconclusive = document.at("inconclusive").get<int>();
  rollout.scale_down_delay = std::chrono::milliseconds(document.at("scale_down_delay_ms").get<std::int64_t>());
  rollout.set_alias = text_from(document.at("set_alias"));
  rollout.forced = document.at("forced").get<bool>();
  rollout.started_at = document.at("started_at").get<std::string>();
  // The first version wrote abort_reason only on aborting, and the readers before this type took
  // these three as optional: a row without them loads as it did.
  rollout.sample_body = document.value("sample_body", std::string());
  rollout.ready_timeout = std::chrono::milliseconds(document.value("ready_timeout_ms", std::int64_t{60'000}));
  rollout.abort_reason = text_from(document.value("abort_reason", nlohmann::json()));
  return rollout;
}

bool Rollout::operator==(const Rollout& other) const
{
  return to_json() == other.to_json();
}

nlohmann::json FinishedRollout::to_json() const
{
  auto document = Rollout::to_json();
  document["outcome"] = outcome;
  document["reason"] = reason;
  document["ended_at"] = ended_at;
  return document;
}

FinishedRollout FinishedRollout::from_json(const nlohmann::json& document)
{
  return {Rollout::from_json(document), document.at("outcome").get<std::string>(),
          document.at("reason").get<std::string>(), document.at("ended_at").get<std::string>()};
}

} // namespace mlops::deploy
