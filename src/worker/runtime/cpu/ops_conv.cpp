// Conv on the CPU: each (image, group) is a matrix product of the group's weights with the
// image's im2col columns, through OpenBLAS, cut into blocks of columns that the device's threads
// share. 1-, 2- and 3-D; float32 and float64.

#include "conv_columns.hpp"
#include "conv_family.hpp"

#include "mlops/core/error.hpp"

#include <cblas.h>
#include <fmt/format.h>

#include <climits>

namespace mlops::runtime::cpu {
namespace {

// c = a * b + beta * c, row-major: a is m x k (packed), b k x n and c m x n with row strides.
void gemm(int m, int n, int k, const float* a, const float* b, int ldb, float beta, float* c, int ldc)
{
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, std::max(k, 1), b, ldb, beta, c, ldc);
}

void gemm(int m, int n, int k, const double* a, const double* b, int ldb, double beta, double* c, int ldc)
{
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0, a, std::max(k, 1), b, ldb, beta, c, ldc);
}

// OpenBLAS runs a product on its own threads above 65536 x GEMM_MULTITHREAD_THRESHOLD (4 unless
// built otherwise) multiply-adds (interface/gemm.c). Products called from the device's threads
// stay below that: threaded products called at once measured up to twice as slow as the same
// products in turn, and OpenBLAS's workers keep spinning after each, taking cores from the pool.
constexpr std::int64_t blas_single_thread_limit = 65536 * 4;
// Blocks narrower than this would make OpenBLAS's products inefficient; 8 columns measured about
// 10% slower than whole images, 1 column far slower.
constexpr std::int64_t min_parallel_block_columns = 8;
// Elements of one block's im2col columns: 512 KiB of float32, about a core's L2 cache.
constexpr std::int64_t column_block_elements = std::int64_t{1} << 17;

// How one Conv run is cut into tasks. Each (image, group) is a product of the group's weights
// (group_outputs x rows) with im2col columns (rows x positions); its columns are cut into blocks
// so that a block's columns stay in the cache, its product stays on the calling thread, and
// there are tasks for every thread even at batch 1.
struct ConvPlan
{
  std::int64_t groups = 0;
  std::int64_t products = 0;  // images x groups
  std::int64_t group_inputs = 0;
  std::int64_t group_outputs = 0;
  std::int64_t rows = 0;           // group_inputs x kernel taps
  std::int64_t positions = 0;      // output positions of one image
  std::int64_t block_columns = 0;  // the last block of a product may be narrower
  std::int64_t blocks = 0;         // per product
  bool pointwise = false;          // 1x1 kernel, stride 1, no padding: the input is the columns
  // False for products too large to cut for the pool while OpenBLAS has threads: blocks then
  // run in turn, each product on OpenBLAS's threads and its im2col on the pool's.
  bool parallel_blocks = true;
};

ConvPlan plan_conv(const TensorView& x, const TensorView& w, const Window3& window, std::int64_t groups,
                   unsigned threads, const Node& node)
{
  ConvPlan plan;
  plan.groups = groups;
  plan.products = x.shape[0] * groups;
  plan.group_inputs = x.shape[1] / groups;
  plan.group_outputs = w.shape[0] / groups;
  plan.rows = plan.group_inputs * window.kernel_size();
  plan.positions = window.output_size();
  plan.pointwise = is_pointwise(window);
  if (plan.rows > INT_MAX || plan.positions > INT_MAX || plan.group_outputs > INT_MAX) {
    throw UnsupportedError(fmt::format("{}: the convolution is too large for BLAS's int sizes", node.label()));
  }
  const std::int64_t by_cache =
      plan.pointwise ? plan.positions : column_block_elements / std::max<std::int64_t>(plan.rows, 1);
  const std::int64_t per_column = std::max<std::int64_t>(plan.group_outputs * plan.rows, 1);
  const bool blas_threaded = openblas_get_num_threads() > 1;
  plan.parallel_blocks = !blas_threaded || per_column * min_parallel_block_columns <= blas_single_thread_limit;
  std::int64_t columns = by_cache;
  if (plan.parallel_blocks) {
    const std::int64_t by_blas = blas_threaded ? blas_single_thread_limit / per_column : plan.positions;
    // Two tasks per thread at least, where there are columns enough to cut.
    const std::int64_t wanted_blocks = (2 * std::int64_t{threads} + plan.products - 1) / plan.products;
    const std::int64_t by_balance = (plan.positions + wanted_blocks - 1) / wanted_blocks;
    columns = std::min({by_cache, by_blas, by_balance});
  }
  plan.block_columns = std::clamp<std::int64_t>(columns, 1, plan.positions);
  plan.blocks = (plan.positions + plan.block_columns - 1) / plan.block_columns;
  return plan;
}

class ConvKernel : public Kernel
{
public:
  ConvKernel(const Node& node, CpuDevice& device) : m_node(node), m_device(device)
  {
    m_groups = node.attribute_int("group", 1);
    if (m_groups < 1) {
      throw Error(ExitCode::integrity, fmt::format("{}: group must be positive, not {}", node.label(), m_groups));
    }
    m_kernel_shape = node.attribute_ints("kernel_shape");
    if (node.inputs.size() < 2) {
      throw Error(ExitCode::integrity, fmt::format("{}: Conv needs an input and weights", node.label()));
    }
  }

  void run(KernelContext& context) override
  {
    const TensorView& x = context.input(0);
    const TensorView& w = context.input(1);
    const TensorView* bias = context.has_input(2) ? &context.input(2) : nullptr;
    check_types(x, w, bias);
    const Window3 window = geometry(x, w, bias);
    TensorView& y = context.allocate_output(0, x.type, output_shape_of(x, w, window));
    if (y.count() == 0) {
      return;
    }
    if (x.type == ElementType::float32) {
      compute<float>(context, x, w, bias, y, window);
    } else {
      compute<double>(context, x, w, bias, y, window);
    }
  }

private:
  void check_types(const TensorView& x, const TensorView& w, const TensorView* bias) const
  {
    if (x.type != ElementType::float32 && x.type != ElementType::float64) {
      throw UnsupportedError(fmt::format("{}: Conv supports float32 and float64; this input is {}", m_node.label(),
                                         element_type_name(x.type)));
    }
    if (w.type != x.type || (bias && bias->type != x.type)) {
      throw Error(ExitCode::usage,
                  fmt::format("{}: the input, weights and bias must have one element type", m_node.label()));
    }
  }

  Window3 geometry(const TensorView& x, const TensorView& w, const TensorView* bias) const
  {
    if (x.shape.size() < 3 || w.shape.size() != x.shape.size()) {
      throw Error(ExitCode::usage, fmt::format("{}: input {} and weights {} must both be N, C and spatial dimensions",
                                               m_node.label(), shape_text(x.shape), shape_text(w.shape)));
    }
    const std::int64_t channels = x.shape[1];
    const std::int64_t outputs = w.shape[0];
    if (w.shape[1] * m_groups != channels || outputs % m_groups != 0) {
      throw Error(ExitCode::usage, fmt::format("{}: weights {} do not fit an input of {} channels in {} groups",
                                               m_node.label(), shape_text(w.shape), channels, m_groups));
    }
    if (bias && bias->shape != Shape{outputs}) {
      throw Error(ExitCode::usage,
                  fmt::format("{}: bias {} should be [{}]", m_node.label(), shape_text(bias->shape), outputs));
    }
    Shape kernel(w.shape.begin() + 2, w.shape.end());
    if (!m_kernel_shape.empty() && m_kernel_shape != kernel) {
      throw Error(ExitCode::usage, fmt::format("{}: kernel_shape {} differs from the weights' {}", m_node.label(),
                                               shape_text(m_kernel_shape), shape_text(kernel)));
    }
    Window3 window;
    if (!to_window3(window_geometry(m_node, x.shape, kernel, false), window)) {
      throw UnsupportedError(fmt::format("{}: Conv runs 1-, 2- and 3-D inputs; this one is {}-D", m_node.label(),
                                         x.shape.size() - 2));
    }
    return window;
  }

  Shape output_shape_of(const TensorView& x, const TensorView& w, const Window3& window) const
  {
    Shape shape{x.shape[0], w.shape[0]};
    shape.insert(shape.end(), window.output.end() - static_cast<std::ptrdiff_t>(x.shape.size() - 2),
                 window.output.end());
    return shape;
  }

  template <class T>
  void compute(KernelContext& context, const TensorView& x, const TensorView& w, const TensorView* bias,
               TensorView& y, const Window3& window)
  {
    const ConvPlan plan = plan_conv(x, w, window, m_groups, m_device.pool().size(), m_node);
    const std::int64_t tasks = plan.products * plan.blocks;
    const std::int64_t slots = plan.parallel_blocks ? std::min<std::int64_t>(m_device.pool().size(), tasks) : 1;
    const std::int64_t slot_elements = plan.pointwise ? 0 : plan.rows * plan.block_columns;
    const size_t scratch_bytes = static_cast<size_t>(slots * slot_elements) * sizeof(T);
    T* scratch = scratch_bytes == 0 ? nullptr : static_cast<T*>(context.scratch(scratch_bytes));
    BlockProduct<T> block{plan, window, x, w, bias, y};

    if (!plan.parallel_blocks) {
      for (std::int64_t task = 0; task < tasks; ++task) {
        block.run(task, scratch, &m_device.pool());
      }
      return;
    }
    // One slot per thread: its tasks run in order and share its im2col buffer.
    m_device.pool().parallel_for(slots, 1, [&](std::int64_t first_slot, std::int64_t end_slot) {
      for (std::int64_t slot = first_slot; slot < end_slot; ++slot) {
        for (std::int64_t task = tasks * slot / slots; task < tasks * (slot + 1) / slots; ++task) {
          block.run(task, scratch + slot * slot_elements, nullptr);
        }
      }
    });
  }

  // One task: the output columns of one block of one (image, group).
  template <class T> struct BlockProduct
  {
    const ConvPlan& plan;
    const Window3& window;
    const TensorView& x;
    const TensorView& w;
    const TensorView* bias;
    TensorView& y;

    // `im2col_pool`, when given, spreads the im2col over its threads by channel.
    void run(std::int64_t task, T* columns, ThreadPool* im2col_pool) const
    {
      const std::int64_t product = task / plan.blocks;
      const std::int64_t group = product % plan.groups;
      const std::int64_t first_column = task % plan.blocks * plan.block_columns;
      const std::int64_t width = std::min(plan.block_columns, plan.positions - first_column);
      const std::int64_t plane_size = window.input_size();
      const T* image = x.as<T>() + (product / plan.groups * x.shape[1] + group * plan.group_inputs) * plane_size;
      T* target = y.as<T>() + product * plan.group_outputs * plan.positions + first_column;
      T beta = 0;
      if (bias) {
        // The product adds onto the bias, which saves a pass over the output.
        for (std::int64_t r = 0; r < plan.group_outputs; ++r) {
          std::fill_n(target + r * plan.positions, width, bias->as<T>()[group * plan.group_outputs + r]);
        }
        beta = 1;
      }
      const T* operand = image + first_column;  // a pointwise Conv multiplies the input itself
      std::int64_t operand_stride = plan.positions;
      if (!plan.pointwise) {
        const std::int64_t channel_rows = window.kernel_size() * width;
        auto lay_out = [&](std::int64_t first, std::int64_t last) {
          im2col(image + first * plane_size, last - first, window, first_column, first_column + width,
                 columns + first * channel_rows);
        };
        if (im2col_pool) {
          im2col_pool->parallel_for(plan.group_inputs, 1, lay_out);
        } else {
          lay_out(0, plan.group_inputs);
        }
        operand = columns;
        operand_stride = width;
      }
      gemm(static_cast<int>(plan.group_outputs), static_cast<int>(width), static_cast<int>(plan.rows),
           w.as<T>() + group * plan.group_outputs * plan.rows, operand, static_cast<int>(operand_stride), beta,
           target, static_cast<int>(plan.positions));
    }
  };

  Node m_node;
  CpuDevice& m_device;
  std::int64_t m_groups = 1;
  Shape m_kernel_shape;
};

std::unique_ptr<Kernel> make_conv(const Node& node, CpuDevice& device)
{
  return std::make_unique<ConvKernel>(node, device);
}

} // namespace

void add_conv_ops(OpTable& table)
{
  table["Conv"] = make_conv;
  add_pool_ops(table);
  add_batchnorm_ops(table);
}

} // namespace mlops::runtime::cpu
