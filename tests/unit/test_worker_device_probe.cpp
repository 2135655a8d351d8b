#include "mlops/worker/device_probe.hpp"

#include <doctest/doctest.h>

TEST_CASE("mlops::worker::probe_cuda_devices")
{
  // On a machine with a GPU this finds it; without one (or in a CPU-only build) it must say why
  // instead of failing, so that `--device auto` can fall back to the CPU.
  auto devices = mlops::worker::probe_cuda_devices();
  if (devices.count > 0) {
    CHECK(!devices.first_name.empty());
    CHECK(devices.unavailable.empty());
  } else {
    CHECK(devices.count == 0);
    CHECK(!devices.unavailable.empty());
  }
}
