#pragma once
// The GPU implementations plugged into the golden checks of VidKV's keys and STP values
// (golden_checks_vidkv.hpp), shared by the tests and vidkv-conformance.
#include "common/golden_checks_vidkv.hpp"
#include "vidkv/gpu_keys.hpp"
#include "vidkv/gpu_quantizer.hpp"
#include "vidkv/gpu_stp.hpp"

namespace vidkv::tools {

// Ranges, selection, coefficients (VkFFT) and decoding on the device; quantize_with quantizes the
// given coefficients and the anomalous channels with the grouped shaders.
KeyImpl gpu_key_impl(GpuKeyQuantizer& keys, GpuQuantizer& grouped);
ValueImpl gpu_value_impl(GpuStp& stp);

}  // namespace vidkv::tools
