// Conv and BatchNormalization on the GPU; the pools (ops_pool.cu) are added from here too.
// Conv is im2col into scratch memory followed by sgemm(): per image and group,
// Y (M/g x P) = W (M/g x C/g*K) times the columns (C/g*K x P), where K is the kernel's size and P
// the output's spatial size.

#include "cuda_device.hpp"
#include "gemm.hpp"
#include "kernel_common.hpp"
#include "sliding_window.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace mlops::runtime::cuda {

namespace {

using Index = std::int64_t;

// The most scratch memory one Conv's columns take: larger batches are cut into chunks of images.
constexpr Index im2col_budget_bytes = Index{256} << 20;

// The columns of `images` images: col[image][c][kernel offset][output position], 0 where the
// window reads padding. For a group, rows c*K.. of one image are its (C/g*K x P) matrix.
// Int is int where everything fits, as 64-bit divisions cost several times more.
template <class Int>
__global__ void im2col(const float* x, float* col, Int images, Int channels, SlidingWindow w)
{
  Int positions = static_cast<Int>(w.output_count());
  Int taps = static_cast<Int>(w.kernel_count());
  Int input_count = static_cast<Int>(w.input_count());
  Int count = images * channels * taps * positions;
  for (Int i = static_cast<Int>(first_index()); i < count; i += static_cast<Int>(grid_stride())) {
    Int position = i % positions;
    Int rest = i / positions;
    Int tap = rest % taps;
    Int plane = rest / taps;  // image * channels + channel
    Int at = 0;
    bool inside = true;
    Int in_stride = 1;
    for (int d = max_spatial - 1; d >= 0; --d) {
      Int outputs = static_cast<Int>(w.output[d]);
      Int kernel = static_cast<Int>(w.kernel[d]);
      Int coordinate = position % outputs * static_cast<Int>(w.stride[d]) - static_cast<Int>(w.pad_begin[d]) +
                       tap % kernel * static_cast<Int>(w.dilation[d]);
      position /= outputs;
      tap /= kernel;
      inside = inside && coordinate >= 0 && coordinate < static_cast<Int>(w.input[d]);
      at += coordinate * in_stride;
      in_stride *= static_cast<Int>(w.input[d]);
    }
    col[i] = inside ? x[plane * input_count + at] : 0.f;
  }
}

// Y[image][channel][...] = bias[channel], so that the GEMM can add onto it (beta = 1). Blocks walk
// the (image, channel) planes as grid_for_rows lays them out.
__global__ void fill_channels(float* y, const float* bias, Index planes, Index channels, Index inner)
{
  for (Index plane = blockIdx.y; plane < planes; plane += gridDim.y) {
    float value = bias[plane % channels];
    float* out = y + plane * inner;
    for (Index i = first_index(); i < inner; i += grid_stride()) {
      out[i] = value;
    }
  }
}

class ConvKernel : public Kernel
{
public:
  ConvKernel(const Node& node, CudaDevice& device)
    : m_node(node), m_device(device), m_groups(node.attribute_int("group", 1)),
      m_kernel_shape(node.attribute_ints("kernel_shape"))
  {
    if (m_groups < 1) {
      throw Error(ExitCode::integrity, fmt::format("{}: group must be positive, not {}", node.label(), m_groups));
    }
  }

  void run(KernelContext& context) override
  {
    const TensorView& x = float_input(context, 0, m_node);
    const TensorView& w = float_input(context, 1, m_node);
    check_shapes(x.shape, w.shape);
    Shape kernel(w.shape.begin() + 2, w.shape.end());
    WindowGeometry geometry = window_geometry(m_node, x.shape, kernel, false);
    Index images = x.shape[0];
    Index channels = x.shape[1];
    Index maps = w.shape[0];
    Shape y_shape{images, maps};
    y_shape.insert(y_shape.end(), geometry.output.begin(), geometry.output.end());
    TensorView& y = context.allocate_output(0, ElementType::float32, y_shape);
    if (y.count() == 0) {
      return;
    }
    SlidingWindow window = sliding_window(geometry, m_node);
    Index positions = window.output_count();
    float beta = 0;
    if (context.has_input(2)) {
      const TensorView& bias = float_input(context, 2, m_node);
      if (bias.shape != Shape{maps}) {
        throw Error(ExitCode::usage, fmt::format("{}: bias of shape {} does not fit {} feature maps", m_node.label(),
                                                 shape_text(bias.shape), maps));
      }
      fill_channels<<<grid_for_rows(images * maps, positions, m_device), block_threads, 0, m_device.stream()>>>(
        y.as<float>(), bias.as<float>(), images * maps, maps, positions);
      check(cudaGetLastError(), "launching Conv's bias");
      beta = 1;
    }
    // A 1x1 kernel with stride 1 and no padding reads each image as its own column matrix. (The
    // same output size is not enough: with stride 2, one pad at the end keeps a size of 2.)
    auto zero = [](Index value) { return value == 0; };
    auto one = [](Index value) { return value == 1; };
    bool pointwise = window.kernel_count() == 1 && std::all_of(geometry.strides.begin(), geometry.strides.end(), one) &&
                     std::all_of(geometry.pads_begin.begin(), geometry.pads_begin.end(), zero) &&
                     std::all_of(geometry.pads_end.begin(), geometry.pads_end.end(), zero);
    Index column_floats = channels * window.kernel_count() * positions;  // per image
    // Without channels, column_floats is 0, and the GEMMs (K = 0) leave Y at the bias or zeros.
    pointwise = pointwise || column_floats == 0;
    Index chunk = pointwise ? images : std::clamp<Index>(im2col_budget_bytes / 4 / column_floats, 1, images);
    float* columns =
      pointwise ? nullptr : static_cast<float*>(context.scratch(static_cast<size_t>(chunk * column_floats) * 4));
    for (Index first = 0; first < images; first += chunk) {
      Index count = std::min(chunk, images - first);
      const float* x_chunk = x.as<float>() + first * channels * window.input_count();
      if (!pointwise) {
        unsigned grid = grid_for(count * column_floats, m_device);
        // Half of int's range: the grid-stride loop's last step may pass the count by a grid's width.
        constexpr Index int_limit = std::numeric_limits<int>::max() / 2;
        if (count * column_floats <= int_limit && count * channels * window.input_count() <= int_limit) {
          im2col<int><<<grid, block_threads, 0, m_device.stream()>>>(x_chunk, columns, static_cast<int>(count),
                                                                    static_cast<int>(channels), window);
        } else {
          im2col<Index><<<grid, block_threads, 0, m_device.stream()>>>(x_chunk, columns, count, channels, window);
        }
        check(cudaGetLastError(), "launching Conv's im2col");
      }
      multiply(w.as<float>(), pointwise ? x_chunk : columns, y.as<float>() + first * maps * positions, count,
               channels, maps, window.kernel_count(), positions, beta);
    }
  }

private:
  void check_shapes(const Shape& x, const Shape& w) const
  {
    if (x.size() < 3 || x.size() > 2 + max_spatial) {
      throw UnsupportedError(fmt::format("{}: the CUDA device convolves 1 to {} spatial dimensions, not input {}",
                                         m_node.label(), max_spatial, shape_text(x)));
    }
    if (w.size() != x.size() || x[1] != w[1] * m_groups || w[0] % m_groups != 0) {
      throw Error(ExitCode::usage, fmt::format("{}: weights {} do not fit input {} in {} group(s)", m_node.label(),
                                               shape_text(w), shape_text(x), m_groups));
    }
    if (!m_kernel_shape.empty() && !std::equal(m_kernel_shape.begin(), m_kernel_shape.end(), w.begin() + 2, w.end())) {
      throw Error(ExitCode::integrity, fmt::format("{}: kernel_shape {} differs from the weights' {}", m_node.label(),
                                                   shape_text(m_kernel_shape), shape_text(w)));
    }
  }

  // The GEMMs of `images` images: one strided-batched call over whichever of images and groups
  // is larger, repeated over the other.
  void multiply(const float* w, const float* col, float* y, Index images, Index channels, Index maps, Index taps,
                Index positions, float beta)
  {
    Index group_maps = maps / m_groups;
    Index depth = channels / m_groups * taps;  // the GEMM's K
    GemmProblem problem = dense_gemm(false, false, group_maps, positions, depth, w, col, y);
    problem.beta = beta;
    Index image_col = channels * taps * positions;
    Index image_y = maps * positions;
    Index group_w = group_maps * depth;
    Index group_col = depth * positions;
    Index group_y = group_maps * positions;
    bool batch_images = images >= m_groups;
    problem.batch = batch_images ? images : m_groups;
    problem.stride_a = batch_images ? 0 : group_w;
    problem.stride_b = batch_images ? image_col : group_col;
    problem.stride_c = batch_images ? image_y : group_y;
    Index repeats = batch_images ? m_groups : images;
    for (Index r = 0; r < repeats; ++r) {
      GemmProblem step = problem;
      step.a += batch_images ? r * group_w : 0;
      step.b += r * (batch_images ? group_col : image_col);
      step.c += r * (batch_images ? group_y : image_y);
      sgemm(m_device, step);
    }
  }

  Node m_node;
  CudaDevice& m_device;
  Index m_groups;
  Shape m_kernel_shape;
};

// Inference: Y = (X - mean) / sqrt(var + epsilon) * scale + B, per channel (dimension 1), over
// (image, channel) planes as fill_channels walks them.
__global__ void batch_normalize(const float* x, float* y, const float* scale, const float* bias, const float* mean,
                                const float* var, float epsilon, Index planes, Index channels, Index inner)
{
  for (Index plane = blockIdx.y; plane < planes; plane += gridDim.y) {
    Index c = plane % channels;
    float mean_c = mean[c];
    float deviation = sqrtf(var[c] + epsilon);
    float scale_c = scale[c];
    float bias_c = bias[c];
    const float* in = x + plane * inner;
    float* out = y + plane * inner;
    for (Index i = first_index(); i < inner; i += grid_stride()) {
      out[i] = (in[i] - mean_c) / deviation * scale_c + bias_c;
    }
  }
}

class BatchNormalizationKernel : public Kernel
{
public:
  BatchNormalizationKernel(const Node& node, CudaDevice& device)
    : m_node(node), m_device(device), m_epsilon(node.attribute_float("epsilon", 1e-5f))
  {
    if (node.attribute_int("training_mode", 0) != 0) {
      throw UnsupportedError(fmt::format("{}: the CUDA device runs BatchNormalization for inference only, "
                                         "not with training_mode=1", node.label()));
    }
    // Before opset 14 the running and saved statistics were outputs of training runs only.
    for (size_t i = 1; i < node.outputs.size(); ++i) {
      if (node.outputs[i] != no_value) {
        throw UnsupportedError(fmt::format("{}: the CUDA device does not compute BatchNormalization's training "
                                           "statistics (output {})", node.label(), i));
      }
    }
    if (node.opset < 9 && node.attribute_int("spatial", 1) == 0) {
      throw UnsupportedError(fmt::format("{}: the CUDA device has no BatchNormalization with spatial=0", node.label()));
    }
  }

  void run(KernelContext& context) override
  {
    const TensorView& x = float_input(context, 0, m_node);
    if (x.shape.size() < 2) {
      throw Error(ExitCode::usage, fmt::format("{}: input {} has no channel dimension", m_node.label(),
                                               shape_text(x.shape)));
    }
    Index channels = x.shape[1];
    const float* parameters[4];
    for (size_t i = 1; i <= 4; ++i) {
      const TensorView& parameter = float_input(context, i, m_node);
      if (parameter.shape != Shape{channels}) {
        throw Error(ExitCode::usage, fmt::format("{}: input {} of shape {} does not fit {} channels", m_node.label(),
                                                 i, shape_text(parameter.shape), channels));
      }
      parameters[i - 1] = parameter.as<float>();
    }
    TensorView& y = context.allocate_output(0, ElementType::float32, x.shape);
    Index count = y.count();
    if (count == 0) {
      return;
    }
    Index planes = x.shape[0] * channels;
    Index inner = count / planes;
    batch_normalize<<<grid_for_rows(planes, inner, m_device), block_threads, 0, m_device.stream()>>>(
      x.as<float>(), y.as<float>(), parameters[0], parameters[1], parameters[2], parameters[3], m_epsilon, planes,
      channels, inner);
    check(cudaGetLastError(), "launching BatchNormalization");
  }

private:
  Node m_node;
  CudaDevice& m_device;
  float m_epsilon;
};

} // namespace

void add_conv_ops(OpTable& table)
{
  table.emplace("Conv", make_kernel_of<ConvKernel>);
  table.emplace("BatchNormalization", make_kernel_of<BatchNormalizationKernel>);
  add_pool_ops(table);
}

} // namespace mlops::runtime::cuda
