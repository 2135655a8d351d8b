#include "mlops/tracking/log_file.hpp"

#include "mlops/core/error.hpp"
#include "mlops/core/interrupt.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <istream>
#include <limits>
#include <mutex>
#include <thread>

namespace mlops::tracking {

namespace {

class LineError : public std::runtime_error
{
public:
  using std::runtime_error::runtime_error;
};

std::optional<double> metric_value(const nlohmann::json& value, const std::string& key)
{
  if (value.is_number()) {
    return value.get<double>();
  }
  if (value.is_null()) {
    return std::nullopt;
  }
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text == "NaN" || text == "nan") {
      return std::nullopt;
    }
    if (text == "Infinity" || text == "inf") {
      return std::numeric_limits<double>::infinity();
    }
    if (text == "-Infinity" || text == "-inf") {
      return -std::numeric_limits<double>::infinity();
    }
  }
  throw LineError(fmt::format("metric \"{}\" has value {}, which is not a number", key, value.dump()));
}

std::int64_t integer(const nlohmann::json& object, const char* name, std::int64_t fallback)
{
  auto found = object.find(name);
  if (found == object.end()) {
    return fallback;
  }
  if (!found->is_number_integer()) {
    throw LineError(fmt::format("\"{}\" must be an integer, not {}", name, found->dump()));
  }
  return found->get<std::int64_t>();
}

void strings(const nlohmann::json& object, const char* name, std::vector<std::pair<std::string, std::string>>& into)
{
  auto found = object.find(name);
  if (found == object.end()) {
    return;
  }
  if (!found->is_object()) {
    throw LineError(fmt::format("\"{}\" must be an object of strings", name));
  }
  for (const auto& [key, value] : found->items()) {
    if (!value.is_string()) {
      throw LineError(fmt::format("{}.{} must be a string, not {}", name, key, value.dump()));
    }
    into.emplace_back(key, value.get<std::string>());
  }
}

void parse_line(const nlohmann::json& line, LogBatch& batch, std::int64_t default_timestamp)
{
  if (!line.is_object()) {
    throw LineError("each line must be a JSON object");
  }
  for (const auto& [name, value] : line.items()) {
    if (name != "key" && name != "value" && name != "step" && name != "timestamp" && name != "metrics" &&
        name != "params" && name != "tags") {
      throw LineError(fmt::format("unknown field \"{}\" (known: key, value, step, timestamp, metrics, params, tags)", name));
    }
  }
  std::int64_t step = integer(line, "step", 0);
  std::int64_t timestamp = integer(line, "timestamp", default_timestamp);
  if (auto key = line.find("key"); key != line.end()) {
    if (!key->is_string() || !line.contains("value")) {
      throw LineError("a metric line needs \"key\" (a string) and \"value\"");
    }
    const auto& name = key->get_ref<const std::string&>();
    batch.metrics.push_back({name, metric_value(line["value"], name), step, timestamp});
  } else if (line.contains("value")) {
    throw LineError("\"value\" without \"key\"");
  }
  if (auto metrics = line.find("metrics"); metrics != line.end()) {
    if (!metrics->is_object()) {
      throw LineError("\"metrics\" must be an object of numbers");
    }
    for (const auto& [key, value] : metrics->items()) {
      batch.metrics.push_back({key, metric_value(value, key), step, timestamp});
    }
  }
  strings(line, "params", batch.params);
  strings(line, "tags", batch.tags);
}

// Line `number` of `source` into `batch`; Error(usage) naming the line when it is bad.
void parse_line_text(const std::string& text, size_t number, const std::string& source, LogBatch& batch,
                     std::int64_t default_timestamp)
{
  if (text.find_first_not_of(" \t\r") == std::string::npos) {
    return;
  }
  try {
    parse_line(nlohmann::json::parse(text), batch, default_timestamp);
  } catch (const nlohmann::json::parse_error& error) {
    throw Error(ExitCode::usage, fmt::format("{} line {}: not JSON ({}); nothing was logged", source, number, error.what()));
  } catch (const LineError& error) {
    throw Error(ExitCode::usage, fmt::format("{} line {}: {}; nothing was logged", source, number, error.what()));
  }
}

} // namespace

LogBatch parse_log_lines(std::istream& in, const std::string& source, std::int64_t default_timestamp)
{
  LogBatch batch;
  std::string text;
  size_t number = 0;
  while (std::getline(in, text)) {
    parse_line_text(text, ++number, source, batch, default_timestamp);
  }
  throw_if_interrupted();  // A signal fails the read (EINTR): say so, not "cannot read".
  if (in.bad()) {
    throw Error(ExitCode::failure, fmt::format("cannot read {}; nothing was logged", source));
  }
  return batch;
}

LogCounts log_lines(Tracking& tracking, const std::string& id, std::istream& in, const std::string& source, bool regular_file)
{
  if (!regular_file) {
    // A pipe may go quiet for as long as its writer likes: read it all before taking the write
    // lock, so that other commands never wait on it.
    LogBatch batch = parse_log_lines(in, source, now_ms());
    tracking.log(id, batch);
    return {batch.metrics.size(), batch.params.size(), batch.tags.size()};
  }
  // Parsing (JSON) and writing (SQLite) each take about half the time of a large file, so a
  // reader thread parses chunks while this thread writes the ones before (a regular file never
  // keeps the transaction waiting for long). A bad line anywhere
  // ends the transaction before it commits: nothing is logged.
  constexpr size_t chunk_lines = 50'000;
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<LogBatch> chunks;
  bool done = false;
  std::exception_ptr failure;
  std::int64_t timestamp = now_ms();
  std::thread reader([&] {
    try {
      std::string text;
      size_t number = 0;
      LogBatch batch;
      auto publish = [&] {
        std::lock_guard lock(mutex);
        chunks.push_back(std::move(batch));
        batch = LogBatch{};
        ready.notify_all();
      };
      while (std::getline(in, text)) {
        ++number;
        parse_line_text(text, number, source, batch, timestamp);
        if (batch.metrics.size() + batch.params.size() + batch.tags.size() >= chunk_lines) {
          publish();
        }
        throw_if_interrupted();  // Then nothing is logged, as for a bad line.
      }
      if (in.bad()) {
        throw Error(ExitCode::failure, fmt::format("cannot read {}; nothing was logged", source));
      }
      publish();
    } catch (...) {
      std::lock_guard lock(mutex);
      failure = std::current_exception();
    }
    std::lock_guard lock(mutex);
    done = true;
    ready.notify_all();
  });
  struct Join
  {
    std::thread& thread;
    ~Join() { thread.join(); }
  } join{reader};

  LogCounts counts;
  tracking.log_chunks(id, [&](size_t i) -> const LogBatch* {
    std::unique_lock lock(mutex);
    ready.wait(lock, [&] { return i < chunks.size() || done; });
    if (failure) {
      std::rethrow_exception(failure);
    }
    if (i == 0) {
      counts = LogCounts{};
    }
    if (i >= chunks.size()) {
      return nullptr;
    }
    counts.metrics += chunks[i].metrics.size();
    counts.params += chunks[i].params.size();
    counts.tags += chunks[i].tags.size();
    return &chunks[i];  // A deque never moves what it holds: the reader may append meanwhile.
  });
  return counts;
}

} // namespace mlops::tracking
