#pragma once
// The shape rules of the operators that rearrange tensors: Flatten, Reshape, Squeeze, Unsqueeze,
// Identity, Transpose and Concat. Which attribute or input says what in which opset, and the
// output shape it gives. Every device calls these, so a model fails the same way, error for error,
// on the CPU and on CUDA. nvcc compiles the files that include this one: C++17, light includes.

#include "mlops/runtime/device.hpp"
#include "mlops/runtime/graph.hpp"
#include "mlops/runtime/tensor.hpp"

#include <cstdint>
#include <memory>
#include <vector>

namespace mlops::runtime {

class Kernel;

// Whether the model names input `index`: optional inputs may be left out or named "".
bool names_input(const Node& node, size_t index);

// The kernel of Flatten, Reshape, Squeeze, Unsqueeze and Identity on every device: the output is
// input 0 with another shape, aliasing its memory, so nothing runs. It reads Reshape's shape
// (from opset 5) and Squeeze's and Unsqueeze's axes (from opset 13) on the host, before that
// their attributes. Throws Error(integrity) when that input is required and missing, and
// UnsupportedError for another operator. Its run throws what the functions below throw.
std::unique_ptr<Kernel> make_alias_kernel(const Node& node);

// Flatten to 2-D: the dimensions before `axis` multiplied into one, those from it into another.
// `axis` may be in [-rank, rank]; outside that, Error(integrity).
Shape flattened_shape(const Node& node, const Shape& input, std::int64_t axis);

// Reshape to `request`: 0 copies the input's dimension at the same index (unless `allow_zero`),
// and one -1 takes whatever the other dimensions leave. Error(usage) when the request is invalid
// or cannot hold the input's elements.
Shape reshaped_shape(const Node& node, const Shape& input, const std::vector<std::int64_t>& request,
                     bool allow_zero);

// Squeeze: drop the dimensions `axes` names, or every dimension of size 1 when it names none.
// Error(usage) for a named dimension whose size is not 1, Error(integrity) for an axis out of
// range or named twice.
Shape squeezed_shape(const Node& node, const Shape& input, const std::vector<std::int64_t>& axes);

// Unsqueeze: insert a 1 at each of `axes`, which index the output. Error(integrity) for an axis
// out of range or named twice.
Shape unsqueezed_shape(const Node& node, const Shape& input, const std::vector<std::int64_t>& axes);

// Transpose's permutation for an input of `rank`: `perm` (the attribute) or, when it is empty,
// the axes reversed. Error(usage) unless it permutes exactly the input's axes.
std::vector<std::int64_t> transpose_permutation(const Node& node, const std::vector<std::int64_t>& perm,
                                                size_t rank);

// Output dimension i is input dimension perm[i], for a checked permutation.
Shape transposed_shape(const Shape& input, const std::vector<std::int64_t>& perm);

// A transpose reduced to what it moves: dimensions of size 1 dropped, and input dimensions that
// stay neighbours in the same order merged. NCHW to NHWC with N = 1 becomes a 2-D transpose; a
// plan of rank 0 or 1 keeps every element in place.
struct TransposePlan
{
  Shape dims;                      // the merged input dimensions, in input order
  std::vector<std::int64_t> perm;  // output dimension i is merged input dimension perm[i]
};

TransposePlan simplified_transpose(const Shape& input, const std::vector<std::int64_t>& perm);

// Concat's axis attribute: required from opset 4, 1 when absent before. Error(integrity) when
// missing.
std::int64_t concat_axis_attribute(const Node& node);

struct ConcatShape
{
  size_t axis = 0;  // non-negative
  Shape shape;
};

// The output of concatenating `inputs` along `axis` (the attribute). Error(usage) for scalars and
// for an input whose type, rank or other dimensions differ from the first's; Error(integrity) for
// an axis out of range.
ConcatShape concatenated_shape(const Node& node, std::int64_t axis, const std::vector<TensorView>& inputs);

// Dropout at inference: the identity (a view of input 0). The rules both devices share live here:
// the ratio (attribute before opset 12, input from 12) must be in [0, 1), and training mode with
// a non-zero ratio, whose output would be random, is UnsupportedError. The optional mask is all
// ones (bool from opset 10, the input's type before); devices only say how to fill it.
class InferenceDropout : public Kernel
{
public:
  explicit InferenceDropout(const Node& node);
  std::vector<size_t> host_inputs() const override;
  void run(KernelContext& context) override;

protected:
  virtual void fill_ones(TensorView& mask) = 0;
  const Node& node() const { return m_node; }

private:
  Node m_node;
  bool m_ratio_is_input;
  bool m_training_is_input;
};

} // namespace mlops::runtime
