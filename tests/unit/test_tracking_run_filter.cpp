#include "mlops/tracking/run_filter.hpp"

#include "mlops/store/database.hpp"
#include "mlops/store/migrations.hpp"
#include "mlops/store/statement.hpp"

#include "expect_error.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <variant>
#include <vector>

using namespace mlops;
using namespace mlops::tracking;
using test::mentions;

namespace {

// Every character the compiler's fixed SQL text is made of: anything else in the SQL would have
// come from the input.
bool only_fixed_text(const std::string& sql)
{
  return std::all_of(sql.begin(), sql.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ' ' || c == '.' || c == ',' || c == '(' ||
           c == ')' || c == '=' || c == '?' || c == '<' || c == '>' || c == '!' || c == '1';
  });
}

size_t placeholders(const std::string& sql)
{
  return static_cast<size_t>(std::count(sql.begin(), sql.end(), '?'));
}

SqlFragment filter(const std::string& text)
{
  CAPTURE(text);
  auto fragment = compile_filter(text);
  CHECK(placeholders(fragment.sql) == fragment.values.size());
  CHECK(only_fixed_text(fragment.sql));
  return fragment;
}

SqlFragment order(const std::string& text)
{
  CAPTURE(text);
  auto fragment = compile_order_by(text);
  CHECK(placeholders(fragment.sql) == fragment.values.size());
  CHECK(only_fixed_text(fragment.sql));
  return fragment;
}

std::string text_at(const SqlFragment& fragment, size_t index)
{
  REQUIRE(index < fragment.values.size());
  REQUIRE(std::holds_alternative<std::string>(fragment.values[index]));
  return std::get<std::string>(fragment.values[index]);
}

double number_at(const SqlFragment& fragment, size_t index)
{
  REQUIRE(index < fragment.values.size());
  REQUIRE(std::holds_alternative<double>(fragment.values[index]));
  return std::get<double>(fragment.values[index]);
}

std::string exists(const char* table, const std::string& test)
{
  return std::string("r.id IN (SELECT x.run_id FROM ") + table + " x WHERE x.key = ? AND " + test + ")";
}

std::string latest(const char* table)
{
  return std::string("(SELECT x.value FROM ") + table + " x WHERE x.run_id = r.id AND x.key = ?)";
}

// The message of the usage error that compile_filter (or compile_order_by) throws for `text`.
std::string filter_error(const std::string& text)
{
  CAPTURE(text);
  return test::error_message(ExitCode::usage, [&] { compile_filter(text); });
}

std::string order_error(const std::string& text)
{
  CAPTURE(text);
  return test::error_message(ExitCode::usage, [&] { compile_order_by(text); });
}

// The end of every error message: the input, and a caret under the byte at 0-based `offset`.
std::string caret(const std::string& shown, size_t offset)
{
  return "\n  " + shown + "\n  " + std::string(offset, ' ') + "^";
}

bool ends_with(const std::string& text, const std::string& end)
{
  return text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0;
}

// The error names the 1-based position of the problem and shows it with a caret.
void check_points_at(const std::string& message, const std::string& what, const std::string& input, size_t offset)
{
  CAPTURE(message);
  CHECK(mentions(message, "invalid " + what + " at position " + std::to_string(offset + 1) + ": "));
  CHECK(ends_with(message, caret(input, offset)));
}

} // namespace

TEST_CASE("mlops::tracking::compile_filter: SQL shape and bound values")
{
  SUBCASE("an empty filter matches every run")
  {
    for (const char* text : {"", "   ", "\t\n"}) {
      auto all = filter(text);
      CHECK(all.sql == "1");
      CHECK(all.values.empty());
    }
  }
  SUBCASE("a metric compares its latest value with a number; the key and the number are bound")
  {
    auto greater = filter("metrics.acc > 0.9");
    CHECK(greater.sql == exists("run_latest_metrics", "x.value > ?"));
    REQUIRE(greater.values.size() == 2);
    CHECK(text_at(greater, 0) == "acc");
    CHECK(number_at(greater, 1) == 0.9);
    CHECK(greater.sql.find("acc") == std::string::npos);
    CHECK(greater.sql.find("0.9") == std::string::npos);

    CHECK(filter("metrics.a = 1").sql == exists("run_latest_metrics", "x.value = ?"));
    CHECK(filter("metrics.a == 1").sql == exists("run_latest_metrics", "x.value = ?"));
    CHECK(filter("metrics.a != 1").sql == exists("run_latest_metrics", "x.value != ?"));
    CHECK(filter("metrics.a <> 1").sql == exists("run_latest_metrics", "x.value != ?"));
    CHECK(filter("metrics.a < 1").sql == exists("run_latest_metrics", "x.value < ?"));
    CHECK(filter("metrics.a <= 1").sql == exists("run_latest_metrics", "x.value <= ?"));
    CHECK(filter("metrics.a >= 1").sql == exists("run_latest_metrics", "x.value >= ?"));
    CHECK(filter("metrics.a>=1").sql == exists("run_latest_metrics", "x.value >= ?"));  // no spaces needed
  }
  SUBCASE("numbers: signs, exponents, leading dots")
  {
    CHECK(number_at(filter("metrics.a > -1e-3"), 1) == -1e-3);
    CHECK(number_at(filter("metrics.a > +5"), 1) == 5.0);
    CHECK(number_at(filter("metrics.a > .5"), 1) == 0.5);
    CHECK(number_at(filter("metrics.a > 2E+2"), 1) == 200.0);
    CHECK(number_at(filter("metrics.a > 10"), 1) == 10.0);
  }
  SUBCASE("params and tags compare strings with = and !=")
  {
    auto equal = filter("params.lr = '0.01'");
    CHECK(equal.sql == exists("run_params", "x.value = ?"));
    REQUIRE(equal.values.size() == 2);
    CHECK(text_at(equal, 0) == "lr");
    CHECK(text_at(equal, 1) == "0.01");
    auto other = filter("tags.team != \"cv\"");  // double quotes too
    CHECK(other.sql == exists("run_tags", "x.value != ?"));
    CHECK(text_at(other, 0) == "team");
    CHECK(text_at(other, 1) == "cv");
  }
  SUBCASE("quotes inside strings: doubled or escaped with a backslash")
  {
    CHECK(text_at(filter("params.a = 'it''s'"), 1) == "it's");
    CHECK(text_at(filter(R"(params.a = 'it\'s')"), 1) == "it's");
    CHECK(text_at(filter(R"(params.a = "say ""hi""")"), 1) == "say \"hi\"");
    CHECK(text_at(filter(R"(params.a = 'back\\slash')"), 1) == "back\\slash");
    CHECK(text_at(filter("params.a = ''"), 1) == "");
  }
  SUBCASE("LIKE is case-sensitive: GLOB, with % _ as * ? and GLOB's own * ? [ made literal")
  {
    auto like = filter("params.model LIKE 'Net%'");
    CHECK(like.sql == exists("run_params", "x.value GLOB ?"));
    CHECK(text_at(like, 0) == "model");
    CHECK(text_at(like, 1) == "Net*");
    CHECK(text_at(filter("tags.t like 'a_b'"), 1) == "a?b");  // keywords in any case
    CHECK(text_at(filter("tags.t LIKE 'x*y?z[0]%'"), 1) == "x[*]y[?]z[[]0]*");
    CHECK(text_at(filter("tags.t LIKE 'plain'"), 1) == "plain");
  }
  SUBCASE("ILIKE is SQLite's LIKE (ASCII case ignored), the pattern bound as written")
  {
    auto ilike = filter("tags.team ILIKE 'C%_*'");
    CHECK(ilike.sql == exists("run_tags", "x.value LIKE ?"));
    CHECK(text_at(ilike, 0) == "team");
    CHECK(text_at(ilike, 1) == "C%_*");
    CHECK(filter("tags.team ilike 'c'").sql == ilike.sql);
  }
  SUBCASE("IN and NOT IN take a list of strings, each bound")
  {
    auto in = filter("params.model IN ('a', 'b', \"c\")");
    CHECK(in.sql == exists("run_params", "x.value IN (?, ?, ?)"));
    REQUIRE(in.values.size() == 4);
    CHECK(text_at(in, 0) == "model");
    CHECK(text_at(in, 1) == "a");
    CHECK(text_at(in, 2) == "b");
    CHECK(text_at(in, 3) == "c");
    auto one = filter("tags.t in ('x')");
    CHECK(one.sql == exists("run_tags", "x.value IN (?)"));
    auto not_in = filter("tags.t NOT IN ('x','y')");
    CHECK(not_in.sql == exists("run_tags", "x.value NOT IN (?, ?)"));
    CHECK(text_at(not_in, 2) == "y");
    CHECK(filter("tags.t not in ('x')").sql == exists("run_tags", "x.value NOT IN (?)"));
  }
  SUBCASE("IS NULL and IS NOT NULL: whether the run has the param or tag")
  {
    auto missing = filter("params.lr IS NULL");
    CHECK(missing.sql == "r.id NOT IN (SELECT x.run_id FROM run_params x WHERE x.key = ?)");
    REQUIRE(missing.values.size() == 1);
    CHECK(text_at(missing, 0) == "lr");
    auto present = filter("tags.team is not null");
    CHECK(present.sql == "r.id IN (SELECT x.run_id FROM run_tags x WHERE x.key = ?)");
    CHECK(text_at(present, 0) == "team");
  }
  SUBCASE("attributes compare their column directly")
  {
    auto status = filter("attributes.status = 'finished'");
    CHECK(status.sql == "r.status = ?");
    REQUIRE(status.values.size() == 1);
    CHECK(text_at(status, 0) == "finished");
    CHECK(filter("attributes.run_id = 'abc'").sql == "r.id = ?");
    CHECK(filter("attributes.run_name LIKE 'exp-%'").sql == "r.name GLOB ?");
    CHECK(text_at(filter("attributes.run_name LIKE 'exp-%'"), 0) == "exp-*");
    CHECK(filter("attributes.run_name ILIKE 'EXP%'").sql == "r.name LIKE ?");
    CHECK(filter("attributes.status IN ('failed', 'killed')").sql == "r.status IN (?, ?)");
    CHECK(filter("attributes.parent_id = 'abc'").sql == "r.parent_id = ?");
    auto started = filter("attributes.start_time >= 1700000000000");
    CHECK(started.sql == "r.start_time >= ?");
    CHECK(number_at(started, 0) == 1700000000000.0);
    CHECK(filter("attributes.end_time < 5").sql == "r.end_time < ?");
    CHECK(filter("attributes.experiment_id = 1").sql == "r.experiment_id = ?");
  }
  SUBCASE("entity aliases, in any case")
  {
    auto metric = filter("metrics.a > 1");
    for (const char* text : {"metric.a > 1", "METRICS.a > 1", "Metric.a > 1"}) {
      CHECK(filter(text).sql == metric.sql);
    }
    auto param = filter("params.a = 'x'");
    for (const char* text : {"param.a = 'x'", "parameter.a = 'x'", "parameters.a = 'x'", "PARAMS.a = 'x'"}) {
      CHECK(filter(text).sql == param.sql);
    }
    auto tag = filter("tags.a = 'x'");
    CHECK(filter("tag.a = 'x'").sql == tag.sql);
    CHECK(filter("TAGS.a = 'x'").sql == tag.sql);
    for (const char* text : {"attribute.status = 'x'", "attributes.status = 'x'", "attr.status = 'x'", "run.status = 'x'",
                             "ATTR.status = 'x'"}) {
      CHECK(filter(text).sql == "r.status = ?");
    }
    CHECK(text_at(filter("Metric.Acc > 1"), 0) == "Acc");  // keys keep their case
  }
  SUBCASE("keys: dotted, slashed, backquoted with spaces, or quoted")
  {
    CHECK(text_at(filter("metrics.train.loss < 1"), 0) == "train.loss");
    CHECK(text_at(filter("metrics.val/acc-top_1 > 0"), 0) == "val/acc-top_1");
    auto spaced = filter("metrics.`my key` > 1");
    CHECK(spaced.sql == exists("run_latest_metrics", "x.value > ?"));
    CHECK(text_at(spaced, 0) == "my key");
    CHECK(text_at(filter("params.\"my param\" = 'x'"), 0) == "my param");
    CHECK(text_at(filter("tags.'a tag' = 'x'"), 0) == "a tag");
    CHECK(text_at(filter("params.`a``b` = 'x'"), 0) == "a`b");
  }
  SUBCASE("AND joins comparisons; values are bound in order")
  {
    auto both = filter("metrics.acc > 0.9 and params.lr = '0.1' AND tags.t IS NULL");
    CHECK(both.sql == exists("run_latest_metrics", "x.value > ?") + " AND " + exists("run_params", "x.value = ?") +
                        " AND r.id NOT IN (SELECT x.run_id FROM run_tags x WHERE x.key = ?)");
    REQUIRE(both.values.size() == 5);
    CHECK(text_at(both, 0) == "acc");
    CHECK(number_at(both, 1) == 0.9);
    CHECK(text_at(both, 2) == "lr");
    CHECK(text_at(both, 3) == "0.1");
    CHECK(text_at(both, 4) == "t");
  }
}

TEST_CASE("mlops::tracking::compile_filter: nothing from the input reaches the SQL text")
{
  const std::string shape = filter("params.x = 'a'").sql;
  const std::vector<std::string> attempts = {
    R"(params.x = '\'; DROP TABLE runs; --')",
    R"(params.x = ''' OR 1=1 --')",
    R"(params.x = '"); DELETE FROM runs; --')",
    R"(params.`x'; DROP TABLE runs; --` = 'a')",
    R"(params.`x"; DROP TABLE runs; --` = 'a')",
    R"(params.`x``); DROP TABLE runs; --` = 'a')",
    R"(params."x`; DROP TABLE runs; --" = 'a')",
    R"(params.'x'' OR ''1''=''1' = 'a')",
  };
  for (const auto& text : attempts) {
    CAPTURE(text);
    auto fragment = filter(text);
    CHECK(fragment.sql == shape);  // the same SQL whatever the key and value
    for (const char* part : {"DROP", "DELETE", "OR", "--", ";", "'", "\"", "`", "1=1"}) {
      CAPTURE(part);
      CHECK(fragment.sql.find(part) == std::string::npos);
    }
    REQUIRE(fragment.values.size() == 2);
  }
  CHECK(text_at(filter(attempts[0]), 1) == "'; DROP TABLE runs; --");
  CHECK(text_at(filter(attempts[3]), 0) == "x'; DROP TABLE runs; --");
  CHECK(text_at(filter(attempts[5]), 0) == "x`); DROP TABLE runs; --");

  // The same in every other position a string can take.
  for (const auto& text : {std::string(R"(tags.t LIKE '%''; DROP TABLE runs; --')"),
                           std::string(R"(tags.t IN ('a', '); DROP TABLE runs; --'))"),
                           std::string(R"(attributes.run_name = '\'; DROP TABLE runs; --')"),
                           std::string(R"(metrics.`'; DROP TABLE runs; --` > 1)")}) {
    CAPTURE(text);
    auto fragment = filter(text);
    CHECK(fragment.sql.find("DROP") == std::string::npos);
    CHECK(fragment.sql.find(';') == std::string::npos);
  }
  auto ordered = order(R"(params.`'; DROP TABLE runs; --` DESC)");
  CHECK(ordered.sql.find("DROP") == std::string::npos);
  CHECK(text_at(ordered, 0) == "'; DROP TABLE runs; --");
}

TEST_CASE("mlops::tracking::compile_filter: errors name the position and show it")
{
  const std::string what = "--filter";
  SUBCASE("OR is not supported")
  {
    std::string input = "metrics.a > 1 or metrics.b > 2";
    auto message = filter_error(input);
    CHECK(mentions(message, "OR is not supported"));
    check_points_at(message, what, input, 14);
    CHECK(mentions(filter_error("metrics.a > 1 OR metrics.b > 2"), "OR is not supported"));
  }
  SUBCASE("a missing operator")
  {
    std::string input = "metrics.a 1";
    auto message = filter_error(input);
    CHECK(mentions(message, "expected a comparison"));
    check_points_at(message, what, input, 10);
    check_points_at(filter_error("params.a"), what, "params.a", 8);  // at the end of the input
    CHECK(mentions(filter_error("metrics.a IS NULL"), "expected a comparison"));  // metrics are never null
    CHECK(mentions(filter_error("params.a NOT 'x'"), "expected IN after NOT"));
    CHECK(mentions(filter_error("metrics.a ! 1"), "'!' must be followed by '='"));
  }
  SUBCASE("an unclosed quote")
  {
    std::string input = "params.a = 'abc";
    auto message = filter_error(input);
    CHECK(mentions(message, "the quote ' is never closed"));
    check_points_at(message, what, input, 11);
    check_points_at(filter_error("params.`a = 'x'"), what, "params.`a = 'x'", 7);
    CHECK(mentions(filter_error(R"(params.a = "x)"), "the quote \" is never closed"));
    CHECK(mentions(filter_error(R"(params.a = 'x\')"), "never closed"));  // an escaped quote closes nothing
  }
  SUBCASE("an unknown entity")
  {
    std::string input = "foo.bar = 'x'";
    auto message = filter_error(input);
    CHECK(mentions(message, "\"foo\" is not metrics, params, tags or attributes"));
    check_points_at(message, what, input, 0);
    CHECK(mentions(filter_error("acc > 1"), "is not metrics, params, tags or attributes"));
    CHECK(mentions(filter_error("metrics > 1"), "expected a '.' and a key"));
    CHECK(mentions(filter_error("'metrics.a' > 1"), "expected metrics.KEY"));
  }
  SUBCASE("an unknown attribute")
  {
    std::string input = "metrics.a > 1 and attributes.color = 'red'";
    auto message = filter_error(input);
    CHECK(mentions(message, "\"color\" is not an attribute"));
    CHECK(mentions(message, "run_id, run_name, status"));
    check_points_at(message, what, input, 18);
    CHECK(mentions(filter_error("attributes.status IS NULL"), "attributes are never null"));
  }
  SUBCASE("a string for a metric or a time")
  {
    std::string input = "metrics.acc > 'high'";
    auto message = filter_error(input);
    CHECK(mentions(message, "expected a number here"));
    check_points_at(message, what, input, 14);
    CHECK(mentions(filter_error("attributes.start_time > '2024'"), "expected a number here"));
    CHECK(mentions(filter_error("metrics.acc > nan"), "expected a number here"));
    CHECK(mentions(filter_error("metrics.acc > 1e999"), "\"1e999\" is not a number"));
    CHECK(mentions(filter_error("metrics.acc > 0x10"), "\"0x10\" is not a number"));
    CHECK(mentions(filter_error("metrics.acc > 1.2.3"), "is not a number"));
  }
  SUBCASE("a number for a param, tag or text attribute")
  {
    std::string input = "params.lr = 0.1";
    auto message = filter_error(input);
    CHECK(mentions(message, "expected a quoted string here"));
    check_points_at(message, what, input, 12);
    CHECK(mentions(filter_error("tags.t = x"), "expected a quoted string"));
    CHECK(mentions(filter_error("attributes.status = 1"), "expected a quoted string"));
    CHECK(mentions(filter_error("params.a IN ('x', 2)"), "expected a quoted string"));
  }
  SUBCASE("LIKE, ILIKE and IN on a metric; <, > on a string")
  {
    std::string input = "metrics.acc LIKE '0.9%'";
    auto message = filter_error(input);
    CHECK(mentions(message, "acc is a number"));
    check_points_at(message, what, input, 12);
    CHECK(mentions(filter_error("metrics.acc ILIKE 'x'"), "is a number"));
    CHECK(mentions(filter_error("attributes.start_time LIKE '1%'"), "is a number"));
    CHECK(mentions(filter_error("metrics.acc IN ('1')"), "IN takes strings"));
    std::string less = "params.lr < '0.1'";
    auto compared = filter_error(less);
    CHECK(mentions(compared, "compares strings only with"));
    check_points_at(compared, what, less, 10);
  }
  SUBCASE("IN needs a parenthesised list")
  {
    CHECK(mentions(filter_error("params.a IN 'x'"), "expected a list in parentheses"));
    CHECK(mentions(filter_error("params.a IN ('x' 'y')"), "expected ',' or ')'"));
    CHECK(mentions(filter_error("params.a IN ('x',"), "expected a quoted string"));
    CHECK(mentions(filter_error("params.a IN ()"), "expected a quoted string"));
  }
  SUBCASE("trailing garbage")
  {
    std::string input = "metrics.a > 1 garbage";
    auto message = filter_error(input);
    CHECK(mentions(message, "expected AND between comparisons"));
    check_points_at(message, what, input, 14);
    CHECK(mentions(filter_error("metrics.a > 1 )"), "expected AND"));
    CHECK(mentions(filter_error("metrics.a > 1 2"), "expected AND"));
    std::string dangling = "metrics.a > 1 and";
    auto after_and = filter_error(dangling);
    CHECK(mentions(after_and, "expected metrics.KEY"));
    check_points_at(after_and, what, dangling, dangling.size());
    auto semicolon = filter_error("metrics.a > 1; DROP TABLE runs");
    CHECK(mentions(semicolon, "unexpected character ';'"));
    check_points_at(semicolon, what, "metrics.a > 1; DROP TABLE runs", 13);
  }
  SUBCASE("an empty key")
  {
    std::string input = "metrics. > 1";
    auto message = filter_error(input);
    CHECK(mentions(message, "expected a key after the '.'"));
    check_points_at(message, what, input, 9);
    std::string quoted = "params.`` = 'x'";
    auto empty = filter_error(quoted);
    CHECK(mentions(empty, "the key is empty"));
    check_points_at(empty, what, quoted, 0);
    CHECK(mentions(filter_error("tags.\"\" = 'x'"), "the key is empty"));
  }
  SUBCASE("control characters are shown as spaces, one column per byte")
  {
    std::string input = "metrics.a > 1\tor metrics.b > 1";
    auto message = filter_error(input);
    CHECK(mentions(message, "OR is not supported"));
    check_points_at(message, what, "metrics.a > 1 or metrics.b > 1", 14);
  }
}

TEST_CASE("mlops::tracking::compile_order_by")
{
  SUBCASE("nothing to order by: empty SQL")
  {
    auto none = order("");
    CHECK(none.sql.empty());
    CHECK(none.values.empty());
    CHECK(order("  ").sql.empty());
  }
  SUBCASE("a metric, param or tag orders by its value, runs lacking it last; the key is bound twice")
  {
    auto by_acc = order("metrics.acc DESC");
    std::string value = latest("run_latest_metrics");
    CHECK(by_acc.sql == value + " IS NULL, " + value + " DESC");
    REQUIRE(by_acc.values.size() == 2);
    CHECK(text_at(by_acc, 0) == "acc");
    CHECK(text_at(by_acc, 1) == "acc");
    CHECK(order("metrics.acc").sql == value + " IS NULL, " + value + " ASC");  // ASC by default
    CHECK(order("metrics.acc asc").sql == value + " IS NULL, " + value + " ASC");
    CHECK(order("metrics.acc desc").sql == by_acc.sql);
    std::string param = latest("run_params");
    CHECK(order("params.lr DESC").sql == param + " IS NULL, " + param + " DESC");
    std::string tag = latest("run_tags");
    CHECK(order("tag.`my tag`").sql == tag + " IS NULL, " + tag + " ASC");
    CHECK(text_at(order("tag.`my tag`"), 0) == "my tag");
  }
  SUBCASE("an attribute orders by its column")
  {
    CHECK(order("attributes.start_time").sql == "r.start_time IS NULL, r.start_time ASC");
    CHECK(order("attributes.start_time").values.empty());
    CHECK(order("attr.end_time DESC").sql == "r.end_time IS NULL, r.end_time DESC");
    CHECK(order("run.run_name").sql == "r.name IS NULL, r.name ASC");
    CHECK(order("attribute.status desc").sql == "r.status IS NULL, r.status DESC");
  }
  SUBCASE("several terms, in order")
  {
    auto terms = order("metrics.acc DESC, params.lr, attributes.run_name DESC");
    std::string metric = latest("run_latest_metrics");
    std::string param = latest("run_params");
    CHECK(terms.sql == metric + " IS NULL, " + metric + " DESC, " + param + " IS NULL, " + param + " ASC, r.name IS NULL, r.name DESC");
    REQUIRE(terms.values.size() == 4);
    CHECK(text_at(terms, 0) == "acc");
    CHECK(text_at(terms, 2) == "lr");
    CHECK(text_at(terms, 3) == "lr");
  }
  SUBCASE("errors name the position and show it")
  {
    const std::string what = "--order-by";
    std::string input = "metrics.acc DESC,";
    auto message = order_error(input);
    CHECK(mentions(message, "expected another key after ','"));
    check_points_at(message, what, input, input.size());
    auto unknown = order_error("foo.bar");
    CHECK(mentions(unknown, "\"foo\" is not metrics, params, tags or attributes"));
    check_points_at(unknown, what, "foo.bar", 0);
    CHECK(mentions(order_error("attributes.color"), "\"color\" is not an attribute"));
    CHECK(mentions(order_error("metrics."), "expected a key after the '.'"));
    CHECK(mentions(order_error("metrics.``"), "the key is empty"));
    CHECK(mentions(order_error("metrics.`acc"), "never closed"));
    CHECK(mentions(order_error(", metrics.acc"), "expected metrics.KEY"));
    CHECK(mentions(order_error("metrics.a DESC DESC"), "expected ASC, DESC or ','"));
  }
}

// The caret goes under the word that is not ASC, DESC or ',' (not at the end of the input).
TEST_CASE("mlops::tracking::compile_order_by: an unknown direction is pointed at")
{
  std::string input = "metrics.acc sideways";
  auto message = order_error(input);
  CHECK(mentions(message, "expected ASC, DESC or ','"));
  check_points_at(message, "--order-by", input, 12);
}

namespace {

struct Runs
{
  test::TempDir dir;
  store::Database db = open(dir.path() / "mlops.db");

  Runs()
  {
    store::migrate(db);
    db.exec("INSERT INTO experiments (id, name, created_at) VALUES (1, 'e', '2024-01-01T00:00:00.000Z')");
    add_run("a", "alpha", "finished", 100, 200);
    add_run("b", "beta", "running", 200, std::nullopt);
    add_run("c", "gamma", "failed", 300, 400);
    add_run("d", "it's; DROP", "killed", 400, 500);
    param("a", "lr", "0.1");
    param("a", "model", "Net_v1");
    param("b", "lr", "0.01");
    param("b", "model", "net*v2");
    param("c", "lr", "0.1");
    tag("a", "team", "CV");
    tag("b", "team", "nlp");
    metric("a", "acc", 0.95);
    metric("a", "loss", 0.1);
    metric("a", "my key", 1.0);
    metric("b", "acc", 0.85);
    metric("b", "loss", std::nullopt);  // NaN
    metric("c", "acc", 0.92);
  }

  static store::Database open(const std::filesystem::path& path)
  {
    store::DatabaseOptions options;
    options.create = true;
    return store::Database::open(path, options);
  }

  static std::string id(const std::string& letter) { return std::string(32, letter[0]); }

  void add_run(const std::string& letter, const std::string& name, const std::string& status, std::int64_t start,
               std::optional<std::int64_t> end)
  {
    db.prepare("INSERT INTO runs (id, experiment_id, name, status, start_time, end_time) VALUES (?, 1, ?, ?, ?, ?)")
      .bind_all(id(letter), name, status, start, end)
      .run();
  }
  void param(const std::string& letter, const std::string& key, const std::string& value)
  {
    db.prepare("INSERT INTO run_params (run_id, key, value) VALUES (?, ?, ?)").bind_all(id(letter), key, value).run();
  }
  void tag(const std::string& letter, const std::string& key, const std::string& value)
  {
    db.prepare("INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)").bind_all(id(letter), key, value).run();
  }
  void metric(const std::string& letter, const std::string& key, std::optional<double> value)
  {
    db.prepare("INSERT INTO run_latest_metrics (run_id, key, step, timestamp, value) VALUES (?, ?, 0, 0, ?)")
      .bind_all(id(letter), key, value)
      .run();
  }

  // The letters of the runs the filter matches, in the order given (then by id).
  std::string select(const std::string& filter_text, const std::string& order_text = "")
  {
    auto where = compile_filter(filter_text);
    auto order_by = compile_order_by(order_text);
    auto rows = db.prepare("SELECT r.id FROM runs r WHERE " + where.sql + " ORDER BY " +
                           (order_by.sql.empty() ? std::string() : order_by.sql + ", ") + "r.id");
    int index = 0;
    for (const auto* values : {&where.values, &order_by.values}) {
      for (const auto& value : *values) {
        std::visit([&](const auto& v) { rows.bind(++index, v); }, value);
      }
    }
    std::string letters;
    while (rows.step()) {
      letters += rows.column_text(0)[0];
    }
    return letters;
  }

  std::int64_t count(const char* table)
  {
    auto rows = db.prepare(std::string("SELECT count(*) FROM ") + table);
    rows.step();
    return rows.column_int64(0);
  }
};

} // namespace

TEST_CASE("mlops::tracking::compile_filter and compile_order_by run against the real schema")
{
  Runs runs;
  SUBCASE("metrics compare their latest value; NaN (NULL) matches no comparison")
  {
    CHECK(runs.select("") == "abcd");
    CHECK(runs.select("metrics.acc > 0.9") == "ac");
    CHECK(runs.select("metrics.acc <= 0.92") == "bc");
    CHECK(runs.select("metrics.acc != 0.95") == "bc");
    CHECK(runs.select("metrics.loss < 1") == "a");
    CHECK(runs.select("metrics.loss != 1") == "a");
    CHECK(runs.select("metrics.`my key` = 1") == "a");
    CHECK(runs.select("metrics.acc > 0.9 and params.lr = '0.1'") == "ac");
    CHECK(runs.select("metrics.acc > 0.9 and params.lr = '0.01'").empty());
  }
  SUBCASE("params and tags; LIKE is case-sensitive, ILIKE not")
  {
    CHECK(runs.select("params.lr = '0.1'") == "ac");
    CHECK(runs.select("params.lr != '0.1'") == "b");  // runs without the param do not match
    CHECK(runs.select("params.model LIKE 'Net%'") == "a");
    CHECK(runs.select("params.model LIKE 'net%'") == "b");
    CHECK(runs.select("params.model ILIKE 'NET%'") == "ab");
    CHECK(runs.select("params.model LIKE 'Net_v1'") == "a");
    CHECK(runs.select("params.model LIKE 'net*%'") == "b");  // * is literal
    CHECK(runs.select("params.model LIKE '%*%'") == "b");
    CHECK(runs.select("params.model LIKE 'Net?v1'").empty());  // ? is literal
    CHECK(runs.select("tags.team IN ('CV', 'x')") == "a");
    CHECK(runs.select("tags.team IN ('cv')").empty());
    CHECK(runs.select("tags.team NOT IN ('CV')") == "b");
    CHECK(runs.select("tags.team IS NULL") == "cd");
    CHECK(runs.select("tags.team IS NOT NULL") == "ab");
    CHECK(runs.select("params.lr IS NULL and tags.team IS NULL") == "d");
  }
  SUBCASE("attributes")
  {
    CHECK(runs.select("attributes.status = 'running'") == "b");
    CHECK(runs.select("attributes.status IN ('failed', 'killed')") == "cd");
    CHECK(runs.select("attributes.start_time >= 300") == "cd");
    CHECK(runs.select("run.end_time < 450") == "ac");  // a running run has no end time
    CHECK(runs.select("attr.run_name = 'it''s; DROP'") == "d");
    CHECK(runs.select("attributes.run_name LIKE '%a'") == "abc");
    CHECK(runs.select("attributes.run_id = '" + Runs::id("c") + "'") == "c");
    CHECK(runs.select("attributes.experiment_id = 1") == "abcd");
  }
  SUBCASE("order by: runs lacking the value come last, whatever the direction")
  {
    CHECK(runs.select("", "metrics.acc DESC") == "acbd");
    CHECK(runs.select("", "metrics.acc") == "bcad");
    CHECK(runs.select("", "params.lr DESC, attributes.run_name DESC") == "cabd");
    CHECK(runs.select("", "attributes.start_time DESC") == "dcba");
    CHECK(runs.select("metrics.acc > 0.8", "metrics.acc DESC") == "acb");
    CHECK(runs.select("", "tags.team") == "abcd");  // "CV" < "nlp", then c and d by id
  }
  SUBCASE("injection attempts are values: they match nothing and change nothing")
  {
    CHECK(runs.select(R"(params.x = '\'; DROP TABLE runs; --')").empty());
    CHECK(runs.select(R"(params.lr = '0.1'' OR ''1''=''1')").empty());
    CHECK(runs.select(R"(params.`lr'; DROP TABLE runs; --` IS NULL)") == "abcd");
    CHECK(runs.select("", R"(params.`'; DROP TABLE runs; --` DESC)") == "abcd");
    CHECK(runs.count("runs") == 4);
    CHECK(runs.count("run_params") == 5);
  }
}
