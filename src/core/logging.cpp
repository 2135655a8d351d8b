#include "mlops/core/logging.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace mlops {

namespace {

spdlog::level::level_enum level_for(const LogSettings& settings)
{
  if (settings.verbosity < 0) {
    return spdlog::level::err;
  }
  if (settings.verbosity > 0) {
    return settings.verbosity == 1 ? spdlog::level::info
           : settings.verbosity == 2 ? spdlog::level::debug
                                     : spdlog::level::trace;
  }
  if (settings.env_level && !settings.env_level->empty()) {
    auto level = spdlog::level::from_str(*settings.env_level);
    // from_str answers "off" for anything it does not know; only "off" itself may mean that.
    if (level == spdlog::level::off && *settings.env_level != "off") {
      throw Error(ExitCode::usage,
                  fmt::format("MLOPS_LOG={} is not a log level, use one of trace, debug, info, "
                              "warn, error, off",
                              *settings.env_level));
    }
    return level;
  }
  return spdlog::level::warn;
}

} // namespace

void setup_logging(const LogSettings& settings)
{
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_st>(
    settings.color ? spdlog::color_mode::always : spdlog::color_mode::never);
  auto logger = std::make_shared<spdlog::logger>("mlops", std::move(sink));
  logger->set_pattern("mlops: %^%l%$: %v");
  logger->set_level(level_for(settings));
  spdlog::set_default_logger(std::move(logger));
}

} // namespace mlops
