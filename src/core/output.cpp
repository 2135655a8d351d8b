#include "mlops/core/output.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <ostream>

namespace mlops {

namespace {

constexpr std::string_view bold = "\033[1m";
constexpr std::string_view red = "\033[1;31m";
constexpr std::string_view reset = "\033[0m";

// Display width of UTF-8 text, counting code points (good enough for names and numbers).
// File names need not be UTF-8; JSON must be. Invalid bytes become U+FFFD instead of an exception.
std::string dump(const nlohmann::json& document)
{
  return document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

size_t display_width(std::string_view text)
{
  return static_cast<size_t>(
    std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

void pad(std::string& line, std::string_view cell, size_t width)
{
  line += cell;
  line.append(width - std::min(width, display_width(cell)), ' ');
}

} // namespace

Table::Table(std::vector<std::string> headers) : m_headers(std::move(headers)) {}

void Table::add_row(std::vector<std::string> cells)
{
  cells.resize(m_headers.size());
  m_rows.push_back(std::move(cells));
}

std::string Table::render(bool color) const
{
  std::vector<size_t> widths;
  for (const auto& header : m_headers) {
    widths.push_back(display_width(header));
  }
  for (const auto& row : m_rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], display_width(row[i]));
    }
  }
  auto render_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      // The last column is not padded, so lines carry no trailing spaces.
      if (i + 1 < cells.size()) {
        pad(line, cells[i], widths[i] + 2);
      } else {
        line += cells[i];
      }
    }
    return line + "\n";
  };
  std::string text = render_row(m_headers);
  if (color) {
    text = fmt::format("{}{}{}\n", bold, text.substr(0, text.size() - 1), reset);
  }
  for (const auto& row : m_rows) {
    text += render_row(row);
  }
  return text;
}

Fields& Fields::add(std::string key, std::string value)
{
  m_fields.emplace_back(std::move(key), std::move(value));
  return *this;
}

std::string Fields::render(bool color) const
{
  size_t width = 0;
  for (const auto& [key, value] : m_fields) {
    width = std::max(width, display_width(key) + 1);
  }
  std::string text;
  for (const auto& [key, value] : m_fields) {
    std::string label = key + ":";
    text += color ? fmt::format("{}{}{}", bold, label, reset) : label;
    text.append(width - display_width(label) + 1, ' ');
    text += value + "\n";
  }
  return text;
}

Output::Output(OutputStyle style, std::ostream& out, std::ostream& err)
  : m_style(style), m_out(out), m_err(err)
{
}

void Output::result(const nlohmann::json& document, std::string_view human)
{
  if (m_style.json) {
    m_out << dump(document) << '\n';
  } else if (!human.empty()) {
    m_out << human;
    if (human.back() != '\n') {
      m_out << '\n';
    }
  }
  m_out.flush();
}

void Output::result(const nlohmann::json& document, const Table& human)
{
  result(document, human.render(m_style.color));
}

void Output::result(const nlohmann::json& document, const Fields& human)
{
  result(document, human.render(m_style.color));
}

void Output::info(std::string_view line)
{
  if (!m_style.json && !m_style.quiet) {
    m_out << line << '\n';
    m_out.flush();
  }
}

void Output::error(const Error& error)
{
  m_err << (m_style.error_color ? fmt::format("mlops: {}error:{} ", red, reset) : "mlops: error: ")
        << error.what() << '\n';
  m_err.flush();
  if (m_style.json) {
    m_out << dump(error_document(error)) << '\n';
    m_out.flush();
  }
}

nlohmann::json error_document(const Error& error)
{
  return {{"error",
           {
             {"code", exit_code_name(error.code())},
             {"exit_code", error.exit_status()},
             {"message", error.what()},
           }}};
}

std::string human_size(std::uint64_t bytes)
{
  if (bytes < 1024) {
    return fmt::format("{} B", bytes);
  }
  constexpr const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  return value < 100 ? fmt::format("{:.1f} {}", value, units[unit]) : fmt::format("{:.0f} {}", value, units[unit]);
}

} // namespace mlops
