#include "mlops/runtime/op_geometry.hpp"

#include "mlops/core/error.hpp"

#include <fmt/format.h>

namespace mlops::runtime {

Shape broadcast_shapes(const Shape& a, const Shape& b, const Node& node)
{
  Shape out(std::max(a.size(), b.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    // Align from the right: a missing leading dimension counts as 1.
    std::int64_t x = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    std::int64_t y = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    if (x != y && x != 1 && y != 1) {
      throw Error(ExitCode::usage, fmt::format("{}: shapes {} and {} cannot be broadcast together",
                                               node.label(), shape_text(a), shape_text(b)));
    }
    out[i] = x == 1 ? y : x;
  }
  return out;
}

std::vector<std::int64_t> broadcast_strides(const Shape& shape, const Shape& out)
{
  std::vector<std::int64_t> strides(out.size(), 0);
  std::int64_t stride = 1;
  size_t offset = out.size() - shape.size();
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i + offset] = shape[i] == 1 ? 0 : stride;
    stride *= shape[i];
  }
  return strides;
}

std::int64_t normalize_axis(std::int64_t axis, std::int64_t rank, const Node& node)
{
  if (axis < -rank || axis >= std::max<std::int64_t>(rank, 1)) {
    throw Error(ExitCode::integrity,
                fmt::format("{}: axis {} is out of range for a tensor of rank {}", node.label(), axis, rank));
  }
  return axis < 0 ? axis + rank : axis;
}

AxisLayout axis_layout(const Shape& shape, std::int64_t axis, bool to_end)
{
  auto product = [&](size_t first, size_t last) {
    std::int64_t result = 1;
    for (size_t i = first; i < last; ++i) {
      result *= shape[i];
    }
    return result;
  };
  const auto at = static_cast<size_t>(axis);
  AxisLayout layout;
  layout.outer = product(0, at);
  layout.length = to_end ? product(at, shape.size()) : shape.at(at);
  layout.inner = to_end ? 1 : product(at + 1, shape.size());
  return layout;
}

namespace {

Shape spatial_attribute(const Node& node, std::string_view key, size_t rank, std::int64_t fallback)
{
  auto values = node.attribute_ints(key, Shape(rank, fallback));
  if (values.size() != rank) {
    throw Error(ExitCode::integrity, fmt::format("{}: {} has {} values for {} spatial dimensions", node.label(),
                                                 key, values.size(), rank));
  }
  for (auto value : values) {
    if (value < (fallback == 0 ? 0 : 1)) {
      throw Error(ExitCode::integrity, fmt::format("{}: {} has the invalid value {}", node.label(), key, value));
    }
  }
  return values;
}

} // namespace

WindowGeometry window_geometry(const Node& node, const Shape& input, const Shape& kernel, bool ceil_mode)
{
  if (input.size() < 3 || input.size() != kernel.size() + 2) {
    throw Error(ExitCode::usage, fmt::format("{}: input of shape {} does not fit a {}-D kernel", node.label(),
                                             shape_text(input), kernel.size()));
  }
  const size_t rank = kernel.size();
  WindowGeometry g;
  g.batch = input[0];
  g.channels = input[1];
  g.input.assign(input.begin() + 2, input.end());
  g.kernel = kernel;
  g.strides = spatial_attribute(node, "strides", rank, 1);
  g.dilations = spatial_attribute(node, "dilations", rank, 1);
  auto pads = node.attribute_ints("pads", Shape(2 * rank, 0));
  if (pads.size() != 2 * rank) {
    throw Error(ExitCode::integrity, fmt::format("{}: pads has {} values, expected {}", node.label(), pads.size(), 2 * rank));
  }
  g.pads_begin.assign(pads.begin(), pads.begin() + static_cast<std::ptrdiff_t>(rank));
  g.pads_end.assign(pads.begin() + static_cast<std::ptrdiff_t>(rank), pads.end());
  std::string auto_pad = node.attribute_string("auto_pad", "NOTSET");
  g.output.resize(rank);
  for (size_t i = 0; i < rank; ++i) {
    if (g.kernel[i] < 1 || pads[i] < 0 || pads[i + rank] < 0) {
      throw Error(ExitCode::integrity, fmt::format("{}: kernel and pads must be positive", node.label()));
    }
    std::int64_t extent = (g.kernel[i] - 1) * g.dilations[i] + 1;
    std::int64_t in = g.input[i];
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      g.output[i] = (in + g.strides[i] - 1) / g.strides[i];
      std::int64_t total = std::max<std::int64_t>(0, (g.output[i] - 1) * g.strides[i] + extent - in);
      g.pads_begin[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pads_end[i] = total - g.pads_begin[i];
      continue;
    }
    if (auto_pad == "VALID") {
      g.pads_begin[i] = g.pads_end[i] = 0;
    } else if (auto_pad != "NOTSET") {
      throw Error(ExitCode::integrity, fmt::format("{}: unknown auto_pad \"{}\"", node.label(), auto_pad));
    }
    std::int64_t span = in + g.pads_begin[i] + g.pads_end[i] - extent;
    if (span < 0) {
      throw Error(ExitCode::usage, fmt::format("{}: input of shape {} is smaller than the kernel", node.label(),
                                               shape_text(input)));
    }
    g.output[i] = (ceil_mode ? (span + g.strides[i] - 1) / g.strides[i] : span / g.strides[i]) + 1;
    // A window may not start in the end padding (as PyTorch and ONNX's reference rule it).
    if (ceil_mode && (g.output[i] - 1) * g.strides[i] >= in + g.pads_begin[i]) {
      --g.output[i];
    }
  }
  return g;
}

} // namespace mlops::runtime
