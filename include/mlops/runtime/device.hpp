#pragma once
// Devices behind one interface. A Device owns its memory and, on CUDA, the one stream its
// executor runs on; each executor makes its own. It turns nodes into kernels: objects that
// compute one node's outputs from its inputs, all in the device's memory.

#include "mlops/core/error.hpp"
#include "mlops/runtime/graph.hpp"
#include "mlops/runtime/tensor.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mlops::runtime {

// A model or request the runtime cannot run (an operator, attribute or element type it lacks),
// as opposed to one that is wrong. The conformance runner counts these as "unsupported".
class UnsupportedError : public Error
{
public:
  explicit UnsupportedError(const std::string& message) : Error(ExitCode::failure, message) {}
};

// What a kernel sees while it runs. Inputs live in the device's memory; `host_input` gives a
// host copy of the inputs the kernel named in Kernel::host_inputs() (shapes, axes, bounds).
class KernelContext
{
public:
  virtual ~KernelContext() = default;

  virtual size_t input_count() const = 0;
  // False for an absent optional input (an empty name in the model, or past the end).
  virtual bool has_input(size_t index) const = 0;
  virtual const TensorView& input(size_t index) const = 0;
  virtual const HostTensor& host_input(size_t index) const = 0;

  virtual size_t output_count() const = 0;
  // False for an optional output nobody reads: a kernel may skip computing it.
  virtual bool wants_output(size_t index) const = 0;
  // Device memory for output `index` (not zeroed). Throws Error(usage) beyond the executor's
  // tensor size limit.
  virtual TensorView& allocate_output(size_t index, ElementType type, Shape shape) = 0;
  // Output `index` as a view of input `input`'s memory with another shape (Reshape, Flatten...).
  virtual TensorView& alias_output(size_t index, size_t input, Shape shape) = 0;
  // Scratch device memory for this run of the kernel (im2col buffers, workspaces).
  virtual void* scratch(size_t bytes) = 0;
};

class Kernel
{
public:
  virtual ~Kernel() = default;
  virtual void run(KernelContext& context) = 0;
  // Inputs the kernel reads on the host; the executor makes them available through host_input.
  virtual std::vector<size_t> host_inputs() const { return {}; }
};

class Device
{
public:
  virtual ~Device() = default;

  // "cpu" or "cuda".
  virtual std::string_view kind() const = 0;
  // For people: "cpu (16 threads)", "cuda:0 NVIDIA H100 80GB HBM3".
  virtual std::string description() const = 0;

  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* memory, size_t bytes) = 0;
  virtual void copy_from_host(void* device, const void* host, size_t bytes) = 0;
  // Waits for the device's work to finish first.
  virtual void copy_to_host(void* host, const void* device, size_t bytes) = 0;
  virtual void copy_on_device(void* to, const void* from, size_t bytes) = 0;
  virtual void synchronize() {}

  // The operators this device has kernels for, sorted.
  virtual std::vector<std::string> operators() const = 0;
  // Throws UnsupportedError for an operator or attribute value it cannot run.
  virtual std::unique_ptr<Kernel> make_kernel(const Node& node) = 0;
};

struct DeviceOptions
{
  unsigned threads = 0;  // CPU threads; 0: every core
};

// "auto" (CUDA when a device exists, else CPU), "cpu" or "cuda". Throws Error(usage) for another
// name and Error(failure) for "cuda" without a usable device, saying why.
std::unique_ptr<Device> make_device(std::string_view kind, const DeviceOptions& options = {});

// Why there is no usable CUDA device ("built without CUDA", the driver's error), or "" when there is one.
std::string cuda_unavailable_reason();

} // namespace mlops::runtime
