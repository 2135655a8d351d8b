// Pooling on the CPU: MaxPool and AveragePool over 1-, 2- and 3-D windows, and the global pools.
// Each (image, channel) plane is pooled on its own, planes spread over the device's threads.

#include "conv_family.hpp"
#include "cpu_kernels.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

namespace mlops::runtime::cpu {
namespace {

// Where the windows sit along one dimension, per output coordinate: the first input coordinate,
// the taps that land inside the input, and how many land inside the padded input.
struct AxisWindows
{
  std::vector<std::int64_t> start;
  std::vector<TapRange> inside;
  std::vector<std::int64_t> padded_taps;
};

std::array<AxisWindows, 3> place_windows(const Window3& w)
{
  std::array<AxisWindows, 3> axes;
  for (size_t d = 0; d < 3; ++d) {
    for (std::int64_t o = 0; o < w.output[d]; ++o) {
      const std::int64_t start = o * w.strides[d] - w.pads_begin[d];
      axes[d].start.push_back(start);
      axes[d].inside.push_back(taps_inside(start, w.kernel[d], w.dilations[d], 0, w.input[d]));
      // ceil_mode's extra windows may reach past the end padding; those taps are not counted.
      TapRange padded = taps_inside(start, w.kernel[d], w.dilations[d], -w.pads_begin[d], w.input[d] + w.pads_end[d]);
      axes[d].padded_taps.push_back(padded.last - padded.first);
    }
  }
  return axes;
}

// Pools `planes` planes an output row at a time: the row starts at `initial`, then each kernel
// tap that lands inside the input folds a strided run of one input row into it with
// combine(accumulated, value), so the inner loop has no bounds checks and no data-dependent
// branches. finish(row, axes, od, oh) completes a row.
template <class T, class Combine, class Finish>
void pool_planes(CpuDevice& device, const T* input, T* output, std::int64_t planes, const Window3& w, T initial,
                 Combine combine, Finish finish)
{
  const auto axes = place_windows(w);
  // Per tap of the last dimension, the output positions it reads inside the input.
  std::vector<TapRange> runs;
  for (std::int64_t kw = 0; kw < w.kernel[2]; ++kw) {
    runs.push_back(taps_inside(kw * w.dilations[2] - w.pads_begin[2], w.output[2], w.strides[2], 0, w.input[2]));
  }
  const std::int64_t in_size = w.input_size();
  const std::int64_t out_size = w.output_size();
  auto pool_range = [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t p = first; p < last; ++p) {
      const T* plane = input + p * in_size;
      T* row = output + p * out_size;
      for (std::int64_t od = 0; od < w.output[0]; ++od) {
        for (std::int64_t oh = 0; oh < w.output[1]; ++oh, row += w.output[2]) {
          std::fill_n(row, w.output[2], initial);
          const TapRange depth = axes[0].inside[od];
          const TapRange height = axes[1].inside[oh];
          for (std::int64_t kd = depth.first; kd < depth.last; ++kd) {
            const std::int64_t id = axes[0].start[od] + kd * w.dilations[0];
            for (std::int64_t kh = height.first; kh < height.last; ++kh) {
              const std::int64_t ih = axes[1].start[oh] + kh * w.dilations[1];
              const T* in_row = plane + (id * w.input[1] + ih) * w.input[2];
              for (std::int64_t kw = 0; kw < w.kernel[2]; ++kw) {
                const std::int64_t offset = kw * w.dilations[2] - w.pads_begin[2];
                for (std::int64_t ow = runs[kw].first; ow < runs[kw].last; ++ow) {
                  row[ow] = combine(row[ow], in_row[ow * w.strides[2] + offset]);
                }
              }
            }
          }
          finish(row, axes, od, oh);
        }
      }
    }
  };
  parallel_ranges(device.pool(), planes, rows_grain(out_size * w.kernel_size()), pool_range);
}

template <class T> constexpr T lowest_value()
{
  return std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
}

// The larger of two values, and NaN once either is NaN (as PyTorch's max pools), without a branch:
// a data-dependent branch in a max loop mispredicts half the time, which made MaxPool several
// times slower. `accumulated > value ? accumulated : value` compiles to maxss, which yields
// `value` when either is NaN, so only an accumulated NaN needs keeping (a conditional move).
template <class T> T larger(T accumulated, T value)
{
  const T maximum = accumulated > value ? accumulated : value;
  if constexpr (std::is_floating_point_v<T>) {
    return std::isnan(accumulated) ? accumulated : maximum;
  }
  return maximum;
}

Shape required_kernel_shape(const Node& node)
{
  Shape kernel = node.attribute_ints("kernel_shape");
  if (kernel.empty()) {
    throw Error(ExitCode::integrity,
                fmt::format("{}: {} needs the kernel_shape attribute", node.label(), node.op_type));
  }
  return kernel;
}

// MaxPool and AveragePool: the window's geometry comes from the attributes and the input's shape.
class WindowPoolKernel : public Kernel
{
public:
  WindowPoolKernel(const Node& node, CpuDevice& device)
      : m_node(node), m_device(device), m_kernel(required_kernel_shape(node)),
        m_ceil_mode(node.attribute_int("ceil_mode", 0) != 0)
  {}

  void run(KernelContext& context) override
  {
    const TensorView& x = context.input(0);
    const WindowGeometry geometry = window_geometry(m_node, x.shape, m_kernel, m_ceil_mode);
    Window3 window;
    if (!to_window3(geometry, window)) {
      throw UnsupportedError(fmt::format("{}: {} runs 1-, 2- and 3-D inputs; this one is {}-D", m_node.label(),
                                         m_node.op_type, geometry.input.size()));
    }
    Shape shape{geometry.batch, geometry.channels};
    shape.insert(shape.end(), geometry.output.begin(), geometry.output.end());
    TensorView& y = context.allocate_output(0, x.type, shape);
    if (y.count() != 0) {
      pool(x, y, geometry.batch * geometry.channels, window);
    }
  }

protected:
  virtual void pool(const TensorView& x, TensorView& y, std::int64_t planes, const Window3& window) = 0;

  Node m_node;
  CpuDevice& m_device;

private:
  Shape m_kernel;
  bool m_ceil_mode = false;
};

class MaxPoolKernel : public WindowPoolKernel
{
public:
  MaxPoolKernel(const Node& node, CpuDevice& device) : WindowPoolKernel(node, device)
  {
    // storage_order only orders the Indices, which this kernel does not compute.
    if (node.outputs.size() > 1 && node.outputs[1] != no_value) {
      throw UnsupportedError(fmt::format("{}: MaxPool's Indices output is not supported", node.label()));
    }
  }

private:
  void pool(const TensorView& x, TensorView& y, std::int64_t planes, const Window3& w) override
  {
    visit_element_type(NumericTypes{}, x.type, m_node, [&](auto zero) {
      using T = decltype(zero);
      auto maximum = [](T accumulated, T value) { return larger(accumulated, value); };
      pool_planes(m_device, x.as<T>(), y.as<T>(), planes, w, lowest_value<T>(), maximum,
                  [](T*, const auto&, auto, auto) {});
    });
  }
};

class AveragePoolKernel : public WindowPoolKernel
{
public:
  AveragePoolKernel(const Node& node, CpuDevice& device)
      : WindowPoolKernel(node, device), m_count_include_pad(node.attribute_int("count_include_pad", 0) != 0)
  {}

private:
  void pool(const TensorView& x, TensorView& y, std::int64_t planes, const Window3& w) override
  {
    visit_element_type(RealTypes{}, x.type, m_node, [&](auto zero) {
      using T = decltype(zero);
      auto add = [](T sum, T value) { return sum + value; };
      pool_planes(m_device, x.as<T>(), y.as<T>(), planes, w, T(0), add,
                  [&](T* row, const std::array<AxisWindows, 3>& axes, std::int64_t od, std::int64_t oh) {
                    divide_by_taps(row, axes, od, oh, w.output[2]);
                  });
    });
  }

  template <class T>
  void divide_by_taps(T* row, const std::array<AxisWindows, 3>& axes, std::int64_t od, std::int64_t oh,
                      std::int64_t width) const
  {
    auto taps = [&](size_t d, std::int64_t o) {
      return m_count_include_pad ? axes[d].padded_taps[o] : axes[d].inside[o].last - axes[d].inside[o].first;
    };
    const std::int64_t outer = taps(0, od) * taps(1, oh);
    for (std::int64_t ow = 0; ow < width; ++ow) {
      // A window wholly in the padding averages nothing; it reads as zero.
      const std::int64_t count = outer * taps(2, ow);
      row[ow] = count > 0 ? row[ow] / static_cast<T>(count) : T(0);
    }
  }

  bool m_count_include_pad = false;
};

// GlobalAveragePool and GlobalMaxPool: one value per (image, channel) plane.
class GlobalPoolKernel : public Kernel
{
public:
  GlobalPoolKernel(const Node& node, CpuDevice& device, bool maximum)
      : m_node(node), m_device(device), m_maximum(maximum)
  {}

  void run(KernelContext& context) override
  {
    const TensorView& x = context.input(0);
    if (x.shape.size() < 3) {
      throw Error(ExitCode::usage, fmt::format("{}: input {} has no spatial dimensions", m_node.label(),
                                               shape_text(x.shape)));
    }
    Shape shape(x.shape.size(), 1);
    shape[0] = x.shape[0];
    shape[1] = x.shape[1];
    TensorView& y = context.allocate_output(0, x.type, shape);
    const std::int64_t planes = y.count();
    const std::int64_t plane_size = element_count(Shape(x.shape.begin() + 2, x.shape.end()));
    if (planes == 0) {
      return;
    }
    if (m_maximum) {
      visit_element_type(NumericTypes{}, x.type, m_node,
                         [&](auto zero) { reduce_planes<decltype(zero)>(x, y, planes, plane_size); });
    } else {
      visit_element_type(RealTypes{}, x.type, m_node,
                         [&](auto zero) { reduce_planes<decltype(zero)>(x, y, planes, plane_size); });
    }
  }

private:
  template <class T>
  void reduce_planes(const TensorView& x, TensorView& y, std::int64_t planes, std::int64_t plane_size)
  {
    const T* input = x.as<T>();
    T* output = y.as<T>();
    parallel_ranges(m_device.pool(), planes, rows_grain(plane_size), [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t p = first; p < last; ++p) {
        const T* plane = input + p * plane_size;
        if (m_maximum) {
          T best = lowest_value<T>();
          for (std::int64_t i = 0; i < plane_size; ++i) {
            best = larger(best, plane[i]);
          }
          output[p] = best;
        } else if constexpr (std::is_floating_point_v<T>) {
          output[p] = plane_size ? sum_of(plane, plane_size) / static_cast<T>(plane_size) : T(0);
        }
      }
    });
  }

  Node m_node;
  CpuDevice& m_device;
  bool m_maximum = false;
};

std::unique_ptr<Kernel> make_max_pool(const Node& node, CpuDevice& device)
{
  return std::make_unique<MaxPoolKernel>(node, device);
}

std::unique_ptr<Kernel> make_average_pool(const Node& node, CpuDevice& device)
{
  return std::make_unique<AveragePoolKernel>(node, device);
}

std::unique_ptr<Kernel> make_global_average_pool(const Node& node, CpuDevice& device)
{
  return std::make_unique<GlobalPoolKernel>(node, device, false);
}

std::unique_ptr<Kernel> make_global_max_pool(const Node& node, CpuDevice& device)
{
  return std::make_unique<GlobalPoolKernel>(node, device, true);
}

} // namespace

void add_pool_ops(OpTable& table)
{
  table["MaxPool"] = make_max_pool;
  table["AveragePool"] = make_average_pool;
  table["GlobalAveragePool"] = make_global_average_pool;
  table["GlobalMaxPool"] = make_global_max_pool;
}

} // namespace mlops::runtime::cpu
