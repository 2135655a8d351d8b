#pragma once
// What the CPU's Conv, pooling and BatchNormalization kernels share: the registration of the
// family's parts (add_conv_ops in ops_conv.cpp calls the others), and a view of a 1-, 2- or 3-D
// window geometry as 3-D, so one loop nest serves every rank.

#include "cpu_device.hpp"
#include "mlops/runtime/op_geometry.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

namespace mlops::runtime::cpu {

void add_pool_ops(OpTable& table);       // MaxPool AveragePool GlobalAveragePool GlobalMaxPool
void add_batchnorm_ops(OpTable& table);  // BatchNormalization

// A WindowGeometry with its spatial dimensions right-aligned in three: a 2-D window is a 3-D one
// whose first dimension has extent 1, kernel 1, stride 1 and no padding.
struct Window3
{
  using Dims = std::array<std::int64_t, 3>;
  Dims input{1, 1, 1};
  Dims output{1, 1, 1};
  Dims kernel{1, 1, 1};
  Dims strides{1, 1, 1};
  Dims dilations{1, 1, 1};
  Dims pads_begin{0, 0, 0};
  Dims pads_end{0, 0, 0};

  std::int64_t input_size() const { return input[0] * input[1] * input[2]; }
  std::int64_t output_size() const { return output[0] * output[1] * output[2]; }
  std::int64_t kernel_size() const { return kernel[0] * kernel[1] * kernel[2]; }
};

// Returns false for more than three spatial dimensions, which the CPU kernels do not run.
inline bool to_window3(const WindowGeometry& geometry, Window3& window)
{
  const size_t rank = geometry.input.size();
  if (rank == 0 || rank > 3) {
    return false;
  }
  const size_t offset = 3 - rank;
  for (size_t i = 0; i < rank; ++i) {
    window.input[offset + i] = geometry.input[i];
    window.output[offset + i] = geometry.output[i];
    window.kernel[offset + i] = geometry.kernel[i];
    window.strides[offset + i] = geometry.strides[i];
    window.dilations[offset + i] = geometry.dilations[i];
    window.pads_begin[offset + i] = geometry.pads_begin[i];
    window.pads_end[offset + i] = geometry.pads_end[i];
  }
  return true;
}

// The taps [first, last) of a kernel of `taps` taps whose input coordinate
// `start + tap * dilation` lies in [low, high); first == last when none does.
struct TapRange
{
  std::int64_t first = 0;
  std::int64_t last = 0;
};

inline TapRange taps_inside(std::int64_t start, std::int64_t taps, std::int64_t dilation, std::int64_t low,
                            std::int64_t high)
{
  TapRange range;
  // The smallest tap with start + tap * dilation >= low, and one past the largest below high.
  range.first = start >= low ? 0 : (low - start + dilation - 1) / dilation;
  range.last = start >= high ? 0 : std::min(taps, (high - 1 - start) / dilation + 1);
  range.first = std::min(range.first, taps);
  range.last = std::max(range.last, range.first);
  return range;
}

} // namespace mlops::runtime::cpu
