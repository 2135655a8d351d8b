#include "mlops/tracking/log_file.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <istream>
#include <limits>

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

} // namespace

LogBatch parse_log_lines(std::istream& in, const std::string& source, std::int64_t default_timestamp)
{
  LogBatch batch;
  std::string text;
  size_t number = 0;
  while (std::getline(in, text)) {
    ++number;
    if (text.find_first_not_of(" \t\r") == std::string::npos) {
      continue;
    }
    try {
      parse_line(nlohmann::json::parse(text), batch, default_timestamp);
    } catch (const nlohmann::json::parse_error& error) {
      throw Error(ExitCode::usage, fmt::format("{} line {}: not JSON ({}); nothing was logged", source, number, error.what()));
    } catch (const LineError& error) {
      throw Error(ExitCode::usage, fmt::format("{} line {}: {}; nothing was logged", source, number, error.what()));
    }
  }
  if (in.bad()) {
    throw Error(ExitCode::failure, fmt::format("cannot read {}; nothing was logged", source));
  }
  return batch;
}

LogCounts log_lines(Tracking& tracking, const std::string& id, std::istream& in, const std::string& source)
{
  LogBatch batch = parse_log_lines(in, source, now_ms());
  tracking.log(id, batch);
  return {batch.metrics.size(), batch.params.size(), batch.tags.size()};
}

} // namespace mlops::tracking
