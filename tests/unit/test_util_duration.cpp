#include "mlops/util/duration.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using mlops::util::parse_duration;

TEST_CASE("mlops::util::parse_duration")
{
  SUBCASE("units")
  {
    CHECK(parse_duration("250ms") == 250ms);
    CHECK(parse_duration("30s") == 30s);
    CHECK(parse_duration("5m") == 5min);
    CHECK(parse_duration("2h") == 2h);
    CHECK(parse_duration("0s") == 0ms);
  }
  SUBCASE("a bare number only where the caller names its unit")
  {
    CHECK_FALSE(parse_duration("30"));
    CHECK(parse_duration("30", 1ms) == 30ms);
    CHECK(parse_duration("30", 1s) == 30s);
  }
  SUBCASE("rejects what is not a duration")
  {
    for (const char* text : {"", "s", "-1s", "1.5s", "10 s", "10sec", "1d", "s10", "0x10ms",
                             "99999999999999999999ms", "9223372036854775807h"}) {
      CHECK_MESSAGE(!parse_duration(text, 1ms), text);
    }
  }
}
