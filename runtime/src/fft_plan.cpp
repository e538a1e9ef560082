// VkFFT plans. This is the only translation unit that sees VkFFT (DESIGN section 9): vk.hpp brings
// volk (VK_NO_PROTOTYPES, globals renamed vidkv_vk*) before the header, so VkFFT's plain Vulkan
// calls go through the library's own entry points; the header is the corrected build-tree copy made
// by cmake/PatchVkFFT.cmake.
#include "vidkv/runtime/fft.hpp"

#include <string>

#include "vidkv/runtime/context.hpp"
#include "vidkv/runtime/profiler.hpp"
#include "vk.hpp"

#define VKFFT_BACKEND 0
#include <vkFFT.h>

namespace vidkv::rt {
namespace {

// glslang's process-wide state and VkFFT's queue submissions at plan creation are not ours to lock
// per context; one plan is made at a time in this process.
std::mutex& creation_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::string result_text(VkFFTResult result) {
  // VkFFT 1.2.26 has no error-string function; name the results a plan can plausibly meet and give
  // the number for the rest (enum VkFFTResult in vkFFT.h).
#define VIDKV_VKFFT_NAME(code) \
  case code:                   \
    return "VkFFT result " + std::to_string(int(code)) + " (" #code ")";
  switch (result) {
    VIDKV_VKFFT_NAME(VKFFT_ERROR_MALLOC_FAILED)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_EMPTY_size)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_UNSUPPORTED_RADIX)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_UNSUPPORTED_FFT_LENGTH)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_UNSUPPORTED_FFT_LENGTH_R2C)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_FAILED_TO_ALLOCATE)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_FAILED_TO_SUBMIT_QUEUE)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_FAILED_TO_WAIT_FOR_FENCES)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_FAILED_SHADER_PREPROCESS)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_FAILED_SHADER_PARSE)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_FAILED_SHADER_LINK)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_FAILED_SPIRV_GENERATE)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_FAILED_TO_CREATE_SHADER_MODULE)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_FAILED_TO_CREATE_PIPELINE)
    VIDKV_VKFFT_NAME(VKFFT_ERROR_FAILED_TO_FIND_MEMORY)
    default:
      return "VkFFT result " + std::to_string(int(result));
  }
#undef VIDKV_VKFFT_NAME
}

bool is_size_refusal(VkFFTResult result) {
  switch (result) {
    case VKFFT_ERROR_EMPTY_size:
    case VKFFT_ERROR_UNSUPPORTED_RADIX:
    case VKFFT_ERROR_UNSUPPORTED_FFT_LENGTH:
    case VKFFT_ERROR_UNSUPPORTED_FFT_LENGTH_R2C:
      return true;
    default:
      return false;
  }
}

}  // namespace

struct FftPlan::Impl {
  std::shared_ptr<Context> context;
  // VkFFT keeps pointers to these handles for the application's lifetime, so they live here.
  VkPhysicalDevice physical_device = VK_NULL_HANDLE;
  VkDevice device = VK_NULL_HANDLE;
  VkQueue queue = VK_NULL_HANDLE;
  VkCommandPool pool = VK_NULL_HANDLE;
  VkFence fence = VK_NULL_HANDLE;
  uint64_t real_bytes = 0;
  uint64_t complex_bytes = 0;
  VkFFTApplication app = {};
  bool app_initialized = false;
  // VkFFT decides whether to rewrite its descriptor sets by comparing the *pointers* it was given
  // last time with the new ones, not the handles behind them. New handles therefore go into the
  // other of two slots, so that their pointer differs; unchanged handles reuse the current slot and
  // leave the descriptor sets alone. [slot][0]: complex side (VkFFT's "buffer"), [slot][1]: real
  // side (VkFFT's "inputBuffer" forward, "outputBuffer" inverse).
  VkBuffer slots[2][2] = {};
  int current = -1;
  std::mutex record_mutex;

  ~Impl() {
    if (app_initialized) deleteVkFFT(&app);
    if (fence != VK_NULL_HANDLE) vkDestroyFence(device, fence, nullptr);
    if (pool != VK_NULL_HANDLE) vkDestroyCommandPool(device, pool, nullptr);
  }
};

FftPlan::FftPlan(std::shared_ptr<Context> context, uint32_t length, uint32_t batch, bool inverse)
    : impl_(std::make_unique<Impl>()), length_(length), batch_(batch), inverse_(inverse) {
  const std::string what = std::string(inverse ? "C2R" : "R2C") + " FFT of length " +
                           std::to_string(length) + ", batch " + std::to_string(batch);
  if (!context) throw Error(ErrorCode::invalid_argument, what + ": no context");
  if (length == 0 || batch == 0) throw Error(ErrorCode::invalid_argument, what + ": sizes must be positive");
  Impl& m = *impl_;
  m.context = std::move(context);
  m.physical_device = m.context->physical_device();
  m.device = m.context->device();
  m.queue = m.context->queue();
  m.real_bytes = real_bytes();
  m.complex_bytes = complex_bytes();

  // VkFFT records and submits its own setup work (Bluestein kernels, tables) during creation.
  VkCommandPoolCreateInfo pool_info{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pool_info.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pool_info.queueFamilyIndex = m.context->queue_family();
  check(vkCreateCommandPool(m.device, &pool_info, nullptr, &m.pool), "vkCreateCommandPool");
  VkFenceCreateInfo fence_info{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  check(vkCreateFence(m.device, &fence_info, nullptr, &m.fence), "vkCreateFence");

  VkFFTConfiguration config = {};
  config.FFTdim = 1;
  config.size[0] = length;
  config.size[1] = 1;
  config.size[2] = 1;
  config.numberBatches = batch;
  config.physicalDevice = &m.physical_device;
  config.device = &m.device;
  config.queue = &m.queue;
  config.commandPool = &m.pool;
  config.fence = &m.fence;
  config.performR2C = 1;
  config.normalize = 0;  // C2R(R2C(x)) = length * x, see fft.hpp
  // One direction per plan: halves the shaders compiled at creation.
  config.makeForwardPlanOnly = inverse ? 0 : 1;
  config.makeInversePlanOnly = inverse ? 1 : 0;
  // Out of place with unpadded rows. The complex side is always VkFFT's main "buffer" (complex
  // stride length/2+1); the real side is its separate "input" buffer for the forward transform
  // (isInputFormatted) and its separate "output" buffer for the inverse (isOutputFormatted). Not
  // inverseReturnToInputBuffer for the inverse: VkFFT 1.2.26 then sizes the real buffer's descriptor
  // range as the complex side, past the end of the buffer. Strides are in elements; VkFFT's default
  // real stride is length + 2, the padded in-place layout, hence explicit strides.
  config.bufferStride[0] = length / 2 + 1;
  config.bufferSize = &m.complex_bytes;
  if (inverse) {
    config.isOutputFormatted = 1;
    config.outputBufferStride[0] = length;
    config.outputBufferSize = &m.real_bytes;
  } else {
    config.isInputFormatted = 1;
    config.inputBufferStride[0] = length;
    config.inputBufferSize = &m.real_bytes;
  }
  // The buffers themselves come at record time; VkFFT then writes its descriptor sets.

  std::lock_guard<std::mutex> lock(creation_mutex());
  // VkFFT submits its setup copies (LUT tables on some vendors, Bluestein kernels) on the queue
  // itself: hold the context's queue lock so no other thread's Context::submit overlaps them.
  const auto queue_lock = m.context->lock_queue();
  const VkFFTResult result = initializeVkFFT(&m.app, config);
  if (result != VKFFT_SUCCESS) {
    deleteVkFFT(&m.app);  // VkFFT returns early on some failures without releasing what it made
    const ErrorCode code = is_size_refusal(result) ? ErrorCode::invalid_argument : ErrorCode::vulkan_error;
    throw Error(code, what + ": initializeVkFFT failed with " + result_text(result));
  }
  m.app_initialized = true;
}

FftPlan::~FftPlan() = default;

void FftPlan::record(VkCommandBuffer cmd, const BufferView& input, const BufferView& output) const {
  Impl& m = *impl_;
  const std::string what = std::string(inverse_ ? "C2R" : "R2C") + " FFT of length " +
                           std::to_string(length_) + ", batch " + std::to_string(batch_);
  const BufferView& real = inverse_ ? output : input;
  const BufferView& complex = inverse_ ? input : output;
  for (const auto* view : {&input, &output}) {
    const char* role = view == &input ? "input" : "output";
    if (view->buffer == VK_NULL_HANDLE)
      throw Error(ErrorCode::invalid_argument, what + ": " + role + " buffer is null");
    if (view->offset != 0)
      throw Error(ErrorCode::invalid_argument,
                  what + ": " + role + " view starts at offset " + std::to_string(view->offset) +
                      "; VkFFT 1.2.26 binds buffers at offset 0 only");
  }
  if (real.size < m.real_bytes)
    throw Error(ErrorCode::buffer_too_small, what + ": real side needs " + std::to_string(m.real_bytes) +
                                                 " bytes, view has " + std::to_string(real.size));
  if (complex.size < m.complex_bytes)
    throw Error(ErrorCode::buffer_too_small, what + ": complex side needs " +
                                                 std::to_string(m.complex_bytes) + " bytes, view has " +
                                                 std::to_string(complex.size));
  if (real.buffer == complex.buffer)
    throw Error(ErrorCode::invalid_argument, what + ": input and output are the same buffer");

  std::lock_guard<std::mutex> lock(m.record_mutex);
  if (m.current < 0 || m.slots[m.current][0] != complex.buffer || m.slots[m.current][1] != real.buffer) {
    m.current = m.current == 0 ? 1 : 0;
    m.slots[m.current][0] = complex.buffer;
    m.slots[m.current][1] = real.buffer;
  }
  VkFFTLaunchParams launch = {};
  launch.commandBuffer = &cmd;
  launch.buffer = &m.slots[m.current][0];
  (inverse_ ? launch.outputBuffer : launch.inputBuffer) = &m.slots[m.current][1];
  // Labelled for an attached profiler (profiler.hpp) by direction and length, not batch, so that
  // a run's table sums one line per transform size.
  Profiler* const profiler = m.context->profiler();
  const uint32_t slot = profiler ? profiler->begin(cmd, std::string("vkfft ") + (inverse_ ? "C2R" : "R2C") +
                                                            " n=" + std::to_string(length_))
                                 : Profiler::kNoSlot;
  const VkFFTResult result = VkFFTAppend(&m.app, inverse_ ? 1 : -1, &launch);
  if (profiler) profiler->end(cmd, slot);
  if (result != VKFFT_SUCCESS)
    throw Error(ErrorCode::vulkan_error, what + ": VkFFTAppend failed with " + result_text(result));
}

FftPlanCache::FftPlanCache(std::shared_ptr<Context> context) : context_(std::move(context)) {}
FftPlanCache::~FftPlanCache() = default;

const FftPlan& FftPlanCache::get(uint32_t length, uint32_t batch, bool inverse) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = plans_[{length, batch, inverse}];
  if (!slot) {
    try {
      slot = std::make_unique<FftPlan>(context_, length, batch, inverse);
    } catch (...) {
      plans_.erase({length, batch, inverse});  // a refused size is not cached
      throw;
    }
  }
  return *slot;
}

size_t FftPlanCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return plans_.size();
}

}  // namespace vidkv::rt
