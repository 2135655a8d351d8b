#pragma once
// What a conformance run found: counts by outcome, overall and by operator, printed as the
// summary line people read in CI logs, as a per-operator table, or as JSON.

#include "case_runner.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace mlops::conformance {

struct Tally
{
  int passed = 0;
  int failed = 0;
  int unsupported = 0;
};

class Report
{
public:
  // `label` names what ran: "cpu", "cuda vs cpu".
  explicit Report(std::string label) : m_label(std::move(label)) {}

  // A case with operators the runtime does not claim: counted, not run.
  void add_not_claimed(const TestCase& test_case, const std::vector<std::string>& missing);
  void add(const TestCase& test_case, Outcome outcome, const std::string& message);

  bool any_failed() const { return m_total.failed > 0; }

  // "conformance (cpu): 412 passed, 0 failed, 31 unsupported, 489 not claimed".
  std::string summary() const;
  // One row per operator of the claimed cases: how many of the cases using it passed, failed...
  void print_operator_table(std::ostream& out) const;
  nlohmann::json to_json() const;

private:
  std::string m_label;
  Tally m_total;
  int m_not_claimed = 0;
  std::map<std::string, Tally> m_by_operator;
  nlohmann::json m_cases = nlohmann::json::array();
};

} // namespace mlops::conformance
