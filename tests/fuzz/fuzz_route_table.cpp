// libFuzzer target: a router reads its routing table from a file and from PUT /admin/routes, so
// RouteTable::parse must refuse any input with an Error and never crash, hang or throw anything
// else. Whatever it accepts must survive a round trip through to_json() unchanged.
//
// Host names that are not numeric are looked up (that is the contract), so inputs naming one may
// wait on the resolver; the seed corpus names only numeric hosts and localhost.
#include "mlops/core/error.hpp"
#include "mlops/worker/route_table.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

using mlops::worker::RouteBackend;
using mlops::worker::RouteTable;

// The resolved addresses are compared by family and size only: a name may resolve to another
// address of the same family the second time it is looked up.
bool same_backend(const RouteBackend& a, const RouteBackend& b)
{
  return a.name == b.name && a.host == b.host && a.port == b.port && a.version == b.version && a.weight == b.weight &&
         a.address.ss_family == b.address.ss_family && a.address_size == b.address_size;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto table = RouteTable::parse(text);
    auto again = RouteTable::parse(table.to_json().dump());
    if (again.model != table.model || again.backends.size() != table.backends.size() ||
        table.backends.size() > RouteTable::max_backends) {
      __builtin_trap();
    }
    for (size_t i = 0; i < table.backends.size(); ++i) {
      if (!same_backend(again.backends[i], table.backends[i]) || table.backends[i].weight > RouteTable::max_weight) {
        __builtin_trap();
      }
    }
  } catch (const mlops::Error&) {
  }
  return 0;
}
