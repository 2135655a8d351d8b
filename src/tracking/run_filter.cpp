#include "mlops/tracking/run_filter.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <optional>

namespace mlops::tracking {

namespace {

enum class TokenKind { word, quoted_key, string, number, op, open, close, comma, end };

struct Token
{
  TokenKind kind;
  std::string text;  // strings and quoted keys unquoted; words and operators as written
  size_t position;   // 0-based byte offset in the input
};

std::string lower(std::string_view text)
{
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

class Syntax
{
public:
  Syntax(std::string_view text, const char* what) : m_text(text), m_what(what) {}

  [[noreturn]] void fail(size_t position, const std::string& problem) const
  {
    std::string shown;
    for (unsigned char c : m_text) {
      shown += c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c);  // one column per byte
    }
    throw Error(ExitCode::usage, fmt::format("invalid {} at position {}: {}\n  {}\n  {}^", m_what, position + 1, problem,
                                             shown, std::string(std::min(position, shown.size()), ' ')));
  }

  std::vector<Token> tokenize() const
  {
    std::vector<Token> tokens;
    size_t i = 0;
    auto is_word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == '/' || c == ':'; };
    while (i < m_text.size()) {
      char c = m_text[i];
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++i;
      } else if (c == '\'' || c == '"' || c == '`') {
        size_t start = i++;
        std::string value;
        for (;;) {
          if (i >= m_text.size()) {
            fail(start, fmt::format("the quote {} is never closed", c));
          }
          if (m_text[i] == '\\' && i + 1 < m_text.size()) {
            value += m_text[i + 1];
            i += 2;
          } else if (m_text[i] == c && i + 1 < m_text.size() && m_text[i + 1] == c) {
            value += c;  // a doubled quote, as in SQL
            i += 2;
          } else if (m_text[i] == c) {
            ++i;
            break;
          } else {
            value += m_text[i++];
          }
        }
        tokens.push_back({c == '`' ? TokenKind::quoted_key : TokenKind::string, std::move(value), start});
      } else if ((std::isdigit(static_cast<unsigned char>(c)) || ((c == '-' || c == '+' || c == '.') && i + 1 < m_text.size() &&
                                                                   (std::isdigit(static_cast<unsigned char>(m_text[i + 1])) || m_text[i + 1] == '.')))) {
        size_t start = i++;
        while (i < m_text.size() && (std::isalnum(static_cast<unsigned char>(m_text[i])) || m_text[i] == '.' ||
                                     ((m_text[i] == '-' || m_text[i] == '+') && (m_text[i - 1] == 'e' || m_text[i - 1] == 'E')))) {
          ++i;
        }
        tokens.push_back({TokenKind::number, std::string(m_text.substr(start, i - start)), start});
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t start = i;
        while (i < m_text.size() && is_word(m_text[i])) {
          ++i;
        }
        tokens.push_back({TokenKind::word, std::string(m_text.substr(start, i - start)), start});
      } else if (c == '(' || c == ')' || c == ',') {
        tokens.push_back({c == '(' ? TokenKind::open : c == ')' ? TokenKind::close : TokenKind::comma, std::string(1, c), i});
        ++i;
      } else if (c == '=' || c == '!' || c == '<' || c == '>') {
        size_t start = i++;
        if (i < m_text.size() && (m_text[i] == '=' || (c == '<' && m_text[i] == '>'))) {
          ++i;
        }
        std::string op(m_text.substr(start, i - start));
        if (op == "!") {
          fail(start, "'!' must be followed by '=' (!=)");
        }
        tokens.push_back({TokenKind::op, op == "<>" ? "!=" : op == "==" ? "=" : op, start});
      } else {
        fail(i, fmt::format("unexpected character '{}'", c));
      }
    }
    tokens.push_back({TokenKind::end, "", m_text.size()});
    return tokens;
  }

private:
  std::string_view m_text;
  const char* m_what;
};

enum class Entity { metric, param, tag, attribute };

struct Attribute
{
  const char* name;
  const char* column;
  bool numeric;
};

constexpr std::array attributes = {
  Attribute{"run_id", "r.id", false},          Attribute{"run_name", "r.name", false},
  Attribute{"status", "r.status", false},      Attribute{"start_time", "r.start_time", true},
  Attribute{"end_time", "r.end_time", true},   Attribute{"parent_id", "r.parent_id", false},
  Attribute{"experiment_id", "r.experiment_id", true},
};

struct Identifier
{
  Entity entity;
  std::string key;
  const Attribute* attribute = nullptr;
  size_t position;
};

class Parser
{
public:
  Parser(std::string_view text, const char* what) : m_syntax(text, what), m_tokens(m_syntax.tokenize()) {}

  const Token& peek() const { return m_tokens[m_next]; }
  const Token& take() { return m_tokens[m_next < m_tokens.size() - 1 ? m_next++ : m_next]; }
  bool at_end() const { return peek().kind == TokenKind::end; }
  bool take_word(const char* word)
  {
    if (peek().kind == TokenKind::word && lower(peek().text) == word) {
      ++m_next;
      return true;
    }
    return false;
  }
  [[noreturn]] void fail(const Token& token, const std::string& problem) const { m_syntax.fail(token.position, problem); }

  Identifier identifier()
  {
    const Token& token = take();
    if (token.kind != TokenKind::word) {
      fail(token, "expected metrics.KEY, params.KEY, tags.KEY or attributes.NAME");
    }
    auto dot = token.text.find('.');
    std::string prefix = lower(token.text.substr(0, dot));
    Identifier id{Entity::attribute, "", nullptr, token.position};
    if (prefix == "metric" || prefix == "metrics") {
      id.entity = Entity::metric;
    } else if (prefix == "param" || prefix == "params" || prefix == "parameter" || prefix == "parameters") {
      id.entity = Entity::param;
    } else if (prefix == "tag" || prefix == "tags") {
      id.entity = Entity::tag;
    } else if (prefix == "attribute" || prefix == "attributes" || prefix == "attr" || prefix == "run") {
      id.entity = Entity::attribute;
    } else {
      fail(token, fmt::format("\"{}\" is not metrics, params, tags or attributes", token.text.substr(0, dot)));
    }
    if (dot == std::string::npos) {
      fail(token, fmt::format("expected a '.' and a key after \"{}\"", token.text));
    }
    id.key = token.text.substr(dot + 1);
    if (id.key.empty()) {
      if (peek().kind != TokenKind::quoted_key && peek().kind != TokenKind::string) {
        fail(peek(), "expected a key after the '.' (quote keys with spaces in backquotes)");
      }
      id.key = take().text;
    }
    if (id.key.empty()) {
      fail(token, "the key is empty");
    }
    if (id.entity == Entity::attribute) {
      auto found = std::find_if(attributes.begin(), attributes.end(), [&](const Attribute& a) { return id.key == a.name; });
      if (found == attributes.end()) {
        fail(token, fmt::format("\"{}\" is not an attribute; attributes are run_id, run_name, status, start_time, "
                                "end_time, parent_id, experiment_id",
                                id.key));
      }
      id.attribute = &*found;
    }
    return id;
  }

private:
  Syntax m_syntax;
  std::vector<Token> m_tokens;
  size_t m_next = 0;
};

bool numeric(const Identifier& id)
{
  return id.entity == Entity::metric || (id.attribute && id.attribute->numeric);
}

SqlValue number_value(Parser& parser, const Token& token)
{
  if (token.kind != TokenKind::number) {
    parser.fail(token, "expected a number here (metrics and times compare as numbers)");
  }
  double value = 0;
  auto [end, error] = std::from_chars(token.text.data() + (token.text[0] == '+' ? 1 : 0),
                                      token.text.data() + token.text.size(), value);
  if (error != std::errc() || end != token.text.data() + token.text.size()) {
    parser.fail(token, fmt::format("\"{}\" is not a number", token.text));
  }
  return value;
}

SqlValue string_value(Parser& parser, const Token& token)
{
  if (token.kind != TokenKind::string) {
    parser.fail(token, "expected a quoted string here ('like this'): params, tags and text attributes are strings");
  }
  return token.text;
}

// LIKE's % and _ as GLOB's * and ?, with GLOB's own specials made literal: a case-sensitive LIKE
// (SQLite's LIKE ignores ASCII case, which is ILIKE).
std::string like_to_glob(const std::string& pattern)
{
  std::string glob;
  for (char c : pattern) {
    switch (c) {
    case '%': glob += '*'; break;
    case '_': glob += '?'; break;
    case '*': glob += "[*]"; break;
    case '?': glob += "[?]"; break;
    case '[': glob += "[[]"; break;
    default: glob += c;
    }
  }
  return glob;
}

// The SQL to test one value expression `value` (a column, or m.value/p.value inside EXISTS).
std::string comparison(Parser& parser, const Identifier& id, const std::string& value, SqlFragment& out)
{
  const Token& op_token = parser.take();
  std::string op = op_token.kind == TokenKind::word ? lower(op_token.text) : op_token.text;
  bool is_numeric = numeric(id);
  if (op_token.kind == TokenKind::op) {
    if (!is_numeric && op != "=" && op != "!=") {
      parser.fail(op_token, fmt::format("{} compares strings only with =, !=, LIKE, ILIKE, IN and IS NULL", id.key));
    }
    out.values.push_back(is_numeric ? number_value(parser, parser.take()) : string_value(parser, parser.take()));
    return fmt::format("{} {} ?", value, op);
  }
  if (op == "like" || op == "ilike") {
    if (is_numeric) {
      parser.fail(op_token, fmt::format("{} is a number: compare it with =, !=, <, <=, > or >=", id.key));
    }
    auto pattern = std::get<std::string>(string_value(parser, parser.take()));
    out.values.push_back(op == "like" ? like_to_glob(pattern) : pattern);
    return fmt::format("{} {} ?", value, op == "like" ? "GLOB" : "LIKE");
  }
  bool negated = op == "not";
  if (negated) {
    if (!parser.take_word("in")) {
      parser.fail(parser.peek(), "expected IN after NOT");
    }
    op = "in";
  }
  if (op == "in") {
    if (is_numeric) {
      parser.fail(op_token, fmt::format("IN takes strings; {} is a number", id.key));
    }
    if (parser.take().kind != TokenKind::open) {
      parser.fail(op_token, "expected a list in parentheses after IN: ('a', 'b')");
    }
    std::string marks;
    for (;;) {
      out.values.push_back(string_value(parser, parser.take()));
      marks += marks.empty() ? "?" : ", ?";
      const Token& next = parser.take();
      if (next.kind == TokenKind::close) {
        break;
      }
      if (next.kind != TokenKind::comma) {
        parser.fail(next, "expected ',' or ')' in the IN list");
      }
    }
    return fmt::format("{} {}IN ({})", value, negated ? "NOT " : "", marks);
  }
  parser.fail(op_token, "expected a comparison: =, !=, <, <=, >, >=, LIKE, ILIKE, [NOT] IN or IS [NOT] NULL");
}

const char* table_of(Entity entity)
{
  switch (entity) {
  case Entity::metric: return "run_latest_metrics";
  case Entity::param: return "run_params";
  case Entity::tag: return "run_tags";
  case Entity::attribute: break;
  }
  return "";
}

std::string clause(Parser& parser, SqlFragment& out)
{
  Identifier id = parser.identifier();
  if (id.entity == Entity::attribute) {
    if (parser.peek().kind == TokenKind::word && lower(parser.peek().text) == "is") {
      parser.fail(parser.peek(), "attributes are never null; IS NULL applies to params and tags");
    }
    return comparison(parser, id, id.attribute->column, out);
  }
  const char* table = table_of(id.entity);
  out.values.push_back(id.key);
  if (id.entity != Entity::metric && parser.take_word("is")) {
    bool negated = parser.take_word("not");
    if (!parser.take_word("null")) {
      parser.fail(parser.peek(), "expected NULL after IS [NOT]");
    }
    return fmt::format("r.id {}IN (SELECT x.run_id FROM {} x WHERE x.key = ?)", negated ? "" : "NOT ", table);
  }
  // A set of run ids, not a lookup per run: SQLite finds them through (key, value) indexes,
  // so a search costs what it matches, not what the home holds.
  std::string test = comparison(parser, id, "x.value", out);
  return fmt::format("r.id IN (SELECT x.run_id FROM {} x WHERE x.key = ? AND {})", table, test);
}

} // namespace

SqlFragment compile_filter(std::string_view filter)
{
  SqlFragment out;
  Parser parser(filter, "--filter");
  if (parser.at_end()) {
    out.sql = "1";
    return out;
  }
  std::vector<std::string> clauses;
  for (;;) {
    clauses.push_back(clause(parser, out));
    if (parser.at_end()) {
      break;
    }
    if (parser.peek().kind == TokenKind::word && lower(parser.peek().text) == "or") {
      parser.fail(parser.peek(), "OR is not supported (as in MLflow): run one search per alternative");
    }
    if (!parser.take_word("and")) {
      parser.fail(parser.peek(), "expected AND between comparisons");
    }
  }
  out.sql = fmt::format("{}", fmt::join(clauses, " AND "));
  return out;
}

SqlFragment compile_order_by(std::string_view order_by)
{
  SqlFragment out;
  Parser parser(order_by, "--order-by");
  std::vector<std::string> terms;
  while (!parser.at_end()) {
    Identifier id = parser.identifier();
    bool descending = false;
    if (parser.take_word("desc")) {
      descending = true;
    } else {
      parser.take_word("asc");
    }
    const char* direction = descending ? "DESC" : "ASC";
    if (id.entity == Entity::attribute) {
      terms.push_back(fmt::format("{} IS NULL, {} {}", id.attribute->column, id.attribute->column, direction));
    } else {
      std::string value = fmt::format("(SELECT x.value FROM {} x WHERE x.run_id = r.id AND x.key = ?)", table_of(id.entity));
      out.values.push_back(id.key);
      out.values.push_back(id.key);
      terms.push_back(fmt::format("{} IS NULL, {} {}", value, value, direction));
    }
    if (parser.at_end()) {
      break;
    }
    if (parser.peek().kind != TokenKind::comma) {
      parser.fail(parser.peek(), "expected ASC, DESC or ',' after an order-by key");
    }
    parser.take();
    if (parser.at_end()) {
      parser.fail(parser.peek(), "expected another key after ','");
    }
  }
  out.sql = fmt::format("{}", fmt::join(terms, ", "));
  return out;
}

} // namespace mlops::tracking
