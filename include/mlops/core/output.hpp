#pragma once
// The one place that prints results. A command builds its result as a JSON document (described by
// a schema in schemas/json/) and, for people, a table or text; Output prints exactly one of them
// on stdout. Logs and progress go to stderr through spdlog, never here.

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace mlops {

class Error;

struct OutputStyle
{
  bool json = false;   // --json: one JSON document on stdout
  bool quiet = false;  // -q: no informational lines
  bool color = false;        // from --no-color, NO_COLOR and whether stdout is a terminal
  bool error_color = false;  // the same for stderr
};

// Columns aligned on the widest cell; the header is bold when colour is on.
class Table
{
public:
  explicit Table(std::vector<std::string> headers);
  void add_row(std::vector<std::string> cells);
  std::string render(bool color) const;
  bool empty() const { return m_rows.empty(); }

private:
  std::vector<std::string> m_headers;
  std::vector<std::vector<std::string>> m_rows;
};

// "key: value" lines with the values aligned, for `show`-style output.
class Fields
{
public:
  Fields& add(std::string key, std::string value);
  std::string render(bool color) const;

private:
  std::vector<std::pair<std::string, std::string>> m_fields;
};

class Output
{
public:
  Output(OutputStyle style, std::ostream& out, std::ostream& err);

  const OutputStyle& style() const { return m_style; }

  // The command's result: `document` with --json, otherwise `human` (a newline is added when
  // missing; nothing is printed for empty text).
  void result(const nlohmann::json& document, std::string_view human);
  void result(const nlohmann::json& document, const Table& human);
  void result(const nlohmann::json& document, const Fields& human);

  // A line for people only ("Initialized ..."): not printed with --json or -q.
  void info(std::string_view line);

  // `mlops: error: ...` on stderr and, with --json, {"error": {...}} on stdout.
  void error(const Error& error);

private:
  OutputStyle m_style;
  std::ostream& m_out;
  std::ostream& m_err;
};

// Bytes for people: "512 B", "4.0 KiB", "61.4 MiB", "250 GiB".
std::string human_size(std::uint64_t bytes);

// The JSON document of an error: {"error": {"code": "not_found", "exit_code": 3, "message": ...}}.
nlohmann::json error_document(const Error& error);

} // namespace mlops
