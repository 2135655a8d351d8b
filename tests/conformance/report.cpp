#include "report.hpp"

#include <fmt/format.h>

namespace mlops::conformance {
namespace {

void count(Tally& tally, Outcome outcome)
{
  switch (outcome) {
  case Outcome::passed: ++tally.passed; break;
  case Outcome::failed: ++tally.failed; break;
  case Outcome::unsupported: ++tally.unsupported; break;
  }
}

nlohmann::json tally_json(const Tally& tally)
{
  return {{"passed", tally.passed}, {"failed", tally.failed}, {"unsupported", tally.unsupported}};
}

} // namespace

void Report::add_not_claimed(const TestCase& test_case, const std::vector<std::string>& missing)
{
  ++m_not_claimed;
  m_cases.push_back({{"name", test_case.name}, {"outcome", "not claimed"}, {"operators", test_case.operators},
                     {"missing_operators", missing}});
}

void Report::add(const TestCase& test_case, Outcome outcome, const std::string& message)
{
  count(m_total, outcome);
  for (const auto& op : test_case.operators) {
    count(m_by_operator[op], outcome);
  }
  nlohmann::json entry = {
    {"name", test_case.name}, {"outcome", outcome_name(outcome)}, {"operators", test_case.operators}};
  if (!message.empty()) {
    entry["message"] = message;
  }
  m_cases.push_back(std::move(entry));
}

std::string Report::summary() const
{
  return fmt::format("conformance ({}): {} passed, {} failed, {} unsupported, {} not claimed", m_label,
                     m_total.passed, m_total.failed, m_total.unsupported, m_not_claimed);
}

void Report::print_operator_table(std::ostream& out) const
{
  out << fmt::format("{:<28} {:>7} {:>7} {:>12}\n", "operator", "passed", "failed", "unsupported");
  for (const auto& [op, tally] : m_by_operator) {
    out << fmt::format("{:<28} {:>7} {:>7} {:>12}\n", op, tally.passed, tally.failed, tally.unsupported);
  }
}

nlohmann::json Report::to_json() const
{
  nlohmann::json by_operator = nlohmann::json::object();
  for (const auto& [op, tally] : m_by_operator) {
    by_operator[op] = tally_json(tally);
  }
  auto json = tally_json(m_total);
  json["device"] = m_label;
  json["not_claimed"] = m_not_claimed;
  json["operators"] = std::move(by_operator);
  json["cases"] = m_cases;
  return json;
}

} // namespace mlops::conformance
