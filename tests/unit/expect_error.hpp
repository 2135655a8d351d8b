#pragma once
// Checking what users see when something is refused: the exit code and the message.

#include "mlops/core/error.hpp"

#include <doctest/doctest.h>

#include <string>

namespace mlops::test {

// The message of the Error that `call` throws, after checking its code; fails the test (and
// returns "") when `call` throws nothing.
template <typename Call> std::string error_message(ExitCode expected, Call&& call)
{
  try {
    call();
    FAIL_CHECK("no error was thrown");
  } catch (const Error& error) {
    CHECK(error.code() == expected);
    return error.what();
  }
  return {};
}

inline bool mentions(const std::string& message, const std::string& needle)
{
  return message.find(needle) != std::string::npos;
}

} // namespace mlops::test
