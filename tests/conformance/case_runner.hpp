#pragma once
// Running one conformance case on one device: load its model for that device, run every data set,
// and compare what comes out with the expected outputs.

#include "compare.hpp"
#include "test_case.hpp"

#include "mlops/runtime/executor.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace mlops::conformance {

enum class Outcome { passed, failed, unsupported };

std::string_view outcome_name(Outcome outcome);  // "passed", "failed", "unsupported"

struct CaseRun
{
  Outcome outcome = Outcome::passed;
  // Why the case failed or is unsupported: "data set 0, output 'y': at [1] (index 1): ...".
  std::string message;
  // What the device computed, by data set, in the graph's output order (empty when it did not run).
  std::vector<std::vector<runtime::NamedTensor>> outputs;
};

// UnsupportedError from the runtime makes the case unsupported; any other exception, a missing or
// extra output, or an output that differs beyond `tolerance` makes it fail. Never throws.
CaseRun run_case(const TestCase& test_case, std::string_view device_kind, unsigned threads,
                 const Tolerance& tolerance);

// "" when `other` computed the same outputs as `reference` within `tolerance`, else where not.
std::string runs_mismatch(const CaseRun& reference, const CaseRun& other, const Tolerance& tolerance);

} // namespace mlops::conformance
