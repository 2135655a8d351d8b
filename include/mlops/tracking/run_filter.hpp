#pragma once
// MLflow's search language for runs, compiled to parameterised SQL (never pasted: every key and
// value is a bound parameter, every column comes from a fixed table).
//
//   filter   := clause (AND clause)*
//   clause   := metrics.KEY (= | != | < | <= | > | >=) NUMBER
//             | (params | tags).KEY (= | != | LIKE | ILIKE) STRING
//             | (params | tags).KEY [NOT] IN (STRING, ...) | (params | tags).KEY IS [NOT] NULL
//             | attributes.NAME OP VALUE   (status, run_name, run_id, start_time, end_time)
//   order_by := term (, term)*     term := IDENTIFIER [ASC | DESC]
//
// Keys may be backquoted (`metrics.\`my key\``); strings take single or double quotes. Entity
// prefixes have MLflow's aliases (metric, param, tag, attribute, attr, run). As in MLflow there
// is no OR; LIKE is case-sensitive, ILIKE is not. Metrics compare their latest value.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace mlops::tracking {

using SqlValue = std::variant<std::int64_t, double, std::string>;

struct SqlFragment
{
  std::string sql;
  std::vector<SqlValue> values;  // bound to the ?s of sql, in order
};

// The WHERE condition for a filter over `runs r` (empty filter: "1"). Throws Error(usage) naming
// the position of the problem and showing it.
SqlFragment compile_filter(std::string_view filter);

// The ORDER BY list (without the keywords) for an order-by expression; runs lacking a metric,
// param or tag sort after those that have it. Throws Error(usage) like compile_filter.
SqlFragment compile_order_by(std::string_view order_by);

} // namespace mlops::tracking
