#pragma once
// im2col for the CPU's Conv: the input patches that a convolution's weights multiply, laid out
// as a matrix with one row per (channel, kernel tap) and one column per output position.

#include "conv_family.hpp"

#include <algorithm>
#include <cstdint>

namespace mlops::runtime::cpu {

// True when the columns are the input itself: a 1x1 kernel, stride 1 and no padding.
inline bool is_pointwise(const Window3& w)
{
  for (size_t i = 0; i < 3; ++i) {
    if (w.kernel[i] != 1 || w.strides[i] != 1 || w.pads_begin[i] != 0 || w.pads_end[i] != 0) {
      return false;
    }
  }
  return true;
}

// Writes the columns [first_column, last_column) of the im2col matrix of `channels` planes of one
// image to `columns` (rows of last_column - first_column values). Taps in the padding read zero.
// Output positions are numbered row-major over the output's spatial dimensions; a "line" is one
// run of the last dimension, along which the taps inside the input are one contiguous run.
template <class T>
void im2col(const T* image, std::int64_t channels, const Window3& w, std::int64_t first_column,
            std::int64_t last_column, T* columns)
{
  const std::int64_t width = w.output[2];
  const std::int64_t first_line = first_column / width;
  const std::int64_t end_line = (last_column + width - 1) / width;
  const std::int64_t plane_size = w.input_size();
  T* row = columns;
  for (std::int64_t c = 0; c < channels; ++c) {
    const T* plane = image + c * plane_size;
    for (std::int64_t kd = 0; kd < w.kernel[0]; ++kd) {
      for (std::int64_t kh = 0; kh < w.kernel[1]; ++kh) {
        for (std::int64_t kw = 0; kw < w.kernel[2]; ++kw, row += last_column - first_column) {
          // Output position ow of a line reads input_line[ow * stride + w_start], inside it for ow in `inside`.
          const std::int64_t w_start = kw * w.dilations[2] - w.pads_begin[2];
          const TapRange inside = taps_inside(w_start, width, w.strides[2], 0, w.input[2]);
          T* out = row;
          for (std::int64_t line = first_line; line < end_line; ++line) {
            // The part [low, high) of this line that lies in the block.
            const std::int64_t low = std::max<std::int64_t>(first_column - line * width, 0);
            const std::int64_t high = std::min<std::int64_t>(last_column - line * width, width);
            const std::int64_t id = line / w.output[1] * w.strides[0] + kd * w.dilations[0] - w.pads_begin[0];
            const std::int64_t ih = line % w.output[1] * w.strides[1] + kh * w.dilations[1] - w.pads_begin[1];
            if (id < 0 || id >= w.input[0] || ih < 0 || ih >= w.input[1]) {
              out = std::fill_n(out, high - low, T(0));
              continue;
            }
            const T* input_line = plane + (id * w.input[1] + ih) * w.input[2];
            const std::int64_t copy_first = std::clamp(inside.first, low, high);
            const std::int64_t copy_last = std::clamp(inside.last, copy_first, high);
            out = std::fill_n(out, copy_first - low, T(0));
            if (w.strides[2] == 1) {
              out = std::copy(input_line + copy_first + w_start, input_line + copy_last + w_start, out);
            } else {
              for (std::int64_t ow = copy_first; ow < copy_last; ++ow) {
                *out++ = input_line[ow * w.strides[2] + w_start];
              }
            }
            out = std::fill_n(out, high - copy_last, T(0));
          }
        }
      }
    }
  }
}

} // namespace mlops::runtime::cpu
