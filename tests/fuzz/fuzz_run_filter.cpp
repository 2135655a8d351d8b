// libFuzzer target: `mlops run ls --filter EXPR --order-by EXPR` compiles text from command lines
// and scripts into SQL. Whatever the input, the SQL is the compiler's own text with one '?' per
// bound value (nothing of the input is pasted into it), and the only error is a usage error.
#include "mlops/core/error.hpp"
#include "mlops/tracking/run_filter.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

void check(const mlops::tracking::SqlFragment& fragment)
{
  auto marks = static_cast<std::size_t>(std::count(fragment.sql.begin(), fragment.sql.end(), '?'));
  if (marks != fragment.values.size()) {
    __builtin_trap();
  }
  // Quotes, semicolons and comments can only come from the input.
  for (char c : fragment.sql) {
    if (c == '\'' || c == '"' || c == '`' || c == ';' || c == '-' || c == '\\' || c == '%' || c == '*' ||
        static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      __builtin_trap();
    }
  }
}

template <typename Compile> void compile(Compile&& compile_text, std::string_view text)
{
  try {
    check(compile_text(text));
  } catch (const mlops::Error& error) {
    if (error.code() != mlops::ExitCode::usage) {
      __builtin_trap();
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::string_view text(reinterpret_cast<const char*>(data), size);
  compile([](std::string_view t) { return mlops::tracking::compile_filter(t); }, text);
  compile([](std::string_view t) { return mlops::tracking::compile_order_by(t); }, text);
  return 0;
}
