// mlops-conformance: runs the model runtime over test cases written by others, in ONNX's
// backend-test layout (Debian's libonnx-testdata node tests, the PyTorch fixtures), and says
// which pass. A case counts only when the runtime claims every operator of its model; a claimed
// case that the runtime refuses with UnsupportedError is "unsupported", anything else wrong is a
// failure, and any failure makes the exit status 1.
#include "case_runner.hpp"
#include "report.hpp"
#include "test_case.hpp"

#include "mlops/core/error.hpp"
#include "mlops/runtime/device.hpp"
#include "mlops/runtime/model_loader.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <set>

namespace fs = std::filesystem;

namespace mlops::conformance {
namespace {

struct Options
{
  fs::path data = "/usr/share/libonnx-testdata/data/node";
  std::string device = "cpu";
  bool compare_devices = false;
  std::vector<std::string> filters;
  // ONNX's backend tests compare with these (numpy's assert_allclose); integers are exact.
  Tolerance tolerance{1e-3, 1e-7};
  // CUDA against the CPU: float32 sums in another order agree to about 1e-4 relative.
  Tolerance device_tolerance{1e-4, 1e-6};
  unsigned threads = 0;
  bool verbose = false;
  bool json = false;
};

void setup_options(CLI::App& app, Options& options)
{
  app.add_option("--data", options.data, "A case (a folder holding model.onnx) or a folder of cases")
      ->capture_default_str();
  app.add_option("--device", options.device, "Where to run: cpu, cuda or auto")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
      ->capture_default_str();
  app.add_flag("--compare-devices", options.compare_devices,
               "Run each case on the CPU and on CUDA and check that they agree (skipped without a CUDA device)");
  app.add_option("--filter", options.filters, "Run only cases whose name contains this (repeatable)");
  app.add_option("--rtol", options.tolerance.rtol, "Relative tolerance for floating outputs")->capture_default_str();
  app.add_option("--atol", options.tolerance.atol, "Absolute tolerance for floating outputs")->capture_default_str();
  app.add_option("--device-rtol", options.device_tolerance.rtol, "Relative tolerance between CUDA and the CPU")
      ->capture_default_str();
  app.add_option("--device-atol", options.device_tolerance.atol, "Absolute tolerance between CUDA and the CPU")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "CPU threads (0: every core)")->capture_default_str();
  app.add_flag("-v,--verbose", options.verbose, "One line per case, and a table by operator");
  app.add_flag("--json", options.json, "Print the results as JSON");
}

bool selected(const TestCase& test_case, const std::vector<std::string>& filters)
{
  if (filters.empty()) {
    return true;
  }
  for (const auto& filter : filters) {
    if (test_case.name.find(filter) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> unclaimed_operators(const TestCase& test_case, const std::set<std::string>& claimed)
{
  std::vector<std::string> missing;
  for (const auto& op : test_case.operators) {
    if (!claimed.contains(op)) {
      missing.push_back(op);
    }
  }
  return missing;
}

// Both devices against the expected outputs, then CUDA against the CPU.
CaseRun compare_devices(const TestCase& test_case, const Options& options)
{
  auto cpu = run_case(test_case, "cpu", options.threads, options.tolerance);
  auto cuda = run_case(test_case, "cuda", options.threads, options.tolerance);
  for (auto outcome : {Outcome::failed, Outcome::unsupported}) {
    if (cpu.outcome == outcome || cuda.outcome == outcome) {
      auto message = cuda.outcome == outcome ? "cuda: " + cuda.message : "cpu: " + cpu.message;
      return CaseRun{outcome, message, {}};
    }
  }
  if (auto mismatch = runs_mismatch(cpu, cuda, options.device_tolerance); !mismatch.empty()) {
    return CaseRun{Outcome::failed, "cuda differs from cpu: " + mismatch, {}};
  }
  return cuda;
}

void print_case(const std::string& outcome, const TestCase& test_case, const std::string& message)
{
  std::cout << fmt::format("{:<12} {}{}\n", outcome, test_case.name, message.empty() ? "" : ": " + message)
            << std::flush;
}

int run_conformance(const Options& options)
{
  // "auto" becomes the device it picked; an unusable "cuda" fails here, saying why.
  auto label = options.compare_devices ? std::string("cuda vs cpu")
                                       : std::string(runtime::make_device(options.device)->kind());
  if (options.compare_devices) {
    if (auto why = runtime::cuda_unavailable_reason(); !why.empty()) {
      // ctest recognises "skipped:" (SKIP_REGULAR_EXPRESSION): no GPU is not a failure.
      if (options.json) {
        std::cout << nlohmann::json{{"device", label}, {"skipped", why}}.dump(2) << "\n";
      } else {
        std::cout << fmt::format("conformance ({}): skipped: {}\n", label, why);
      }
      return 0;
    }
  }
  const auto& operators = runtime::supported_operators();
  std::set<std::string> claimed(operators.begin(), operators.end());
  Report report(label);
  int selected_count = 0;
  for (const auto& test_case : find_test_cases(options.data)) {
    if (!selected(test_case, options.filters)) {
      continue;
    }
    ++selected_count;
    if (auto missing = unclaimed_operators(test_case, claimed); !missing.empty()) {
      report.add_not_claimed(test_case, missing);
      if (options.verbose && !options.json) {
        print_case("not claimed", test_case, fmt::format("{}", fmt::join(missing, ", ")));
      }
      continue;
    }
    auto run = options.compare_devices ? compare_devices(test_case, options)
               : test_case.has_expected_outputs()
                 ? run_case(test_case, label, options.threads, options.tolerance)
                 : CaseRun{Outcome::failed, "no expected outputs (output_N.pb): only --compare-devices checks it", {}};
    report.add(test_case, run.outcome, run.message);
    bool worth_a_line = options.verbose || run.outcome == Outcome::failed;
    if (worth_a_line && !options.json) {
      print_case(std::string(outcome_name(run.outcome)), test_case, run.message);
    }
  }
  if (selected_count == 0) {
    throw Error(ExitCode::not_found, fmt::format("no case under {} matches the filters", options.data.string()));
  }
  if (options.json) {
    std::cout << report.to_json().dump(2) << "\n";
  } else {
    if (options.verbose) {
      report.print_operator_table(std::cout);
    }
    std::cout << report.summary() << "\n";
  }
  return report.any_failed() ? 1 : 0;
}

} // namespace
} // namespace mlops::conformance

int main(int argc, char** argv)
{
  CLI::App app("mlops-conformance: runs the model runtime over ONNX backend-test cases", "mlops-conformance");
  mlops::conformance::Options options;
  mlops::conformance::setup_options(app, options);
  try {
    app.parse(argc, argv);
    return mlops::conformance::run_conformance(options);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  } catch (const mlops::Error& error) {
    std::fprintf(stderr, "mlops-conformance: error: %s\n", error.what());
    return error.exit_status();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "mlops-conformance: error: %s\n", error.what());
    return 1;
  }
}
