#pragma once
// `mlops run log --file F`: metrics, params and tags as JSON lines, one object per line, in
// either shape (both may carry "step" and "timestamp", which default to 0 and now):
//   {"key": "loss", "value": 0.25, "step": 3}                              one metric (MLflow's)
//   {"metrics": {"loss": 0.25, "acc": 0.9}, "params": {"lr": "0.01"}, "tags": {"team": "cv"}}
// Values are numbers, or null / "NaN" / "Infinity" / "-Infinity". Blank lines are skipped. The
// whole file is read and checked first, then logged in one transaction: all of it or none.

#include "mlops/tracking/tracking.hpp"

#include <cstddef>
#include <iosfwd>
#include <string>

namespace mlops::tracking {

struct LogCounts
{
  std::size_t metrics = 0;
  std::size_t params = 0;
  std::size_t tags = 0;
};

// Parses the lines into a batch. Throws Error(usage) naming `source` and the line number.
LogBatch parse_log_lines(std::istream& in, const std::string& source, std::int64_t default_timestamp);

// `regular_file`: parsed while logging (a file never blocks); otherwise (a pipe) read to its end
// before the transaction starts.
LogCounts log_lines(Tracking& tracking, const std::string& id, std::istream& in, const std::string& source, bool regular_file);

} // namespace mlops::tracking
