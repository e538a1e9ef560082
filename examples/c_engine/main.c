/* A C engine with its own Vulkan device (through the Vulkan loader) that hands it to vidkv
 * (vidkv_context_wrap) and records a decode loop into its own command buffer: three sequences'
 * prefills, then steps of one batched append and one batched attention for all three
 * (vidkv_record_append_batch, vidkv_record_attention_batch), all in one submission. It checks the
 * last step's attention against a CPU attention (double precision) over what the cache holds
 * (vidkv_dequantize). Built out of tree with plain gcc and pkg-config:
 *   gcc -std=c11 examples/c_engine/main.c $(pkg-config --cflags --static --libs vidkv) -lvulkan -lm */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

#include "vidkv/vidkv.h"

enum { SEQS = 3, KV = 2, QH = 8, DIM = 64, PREFILL = 200, STEPS = 6, MAX_TOKENS = 512 };
static const uint32_t prefill_tokens[SEQS] = {100, 150, 200};

#define VK(call)                                                      \
  do {                                                                \
    VkResult r_ = (call);                                             \
    if (r_ != VK_SUCCESS) {                                           \
      fprintf(stderr, "c_engine: %s failed: %d\n", #call, (int)r_);   \
      exit(1);                                                        \
    }                                                                 \
  } while (0)
#define VIDKV(call)                                                                            \
  do {                                                                                         \
    if ((call) != VIDKV_OK) {                                                                  \
      fprintf(stderr, "c_engine: %s failed: %s\n", #call, vidkv_last_error_message());        \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

typedef struct {
  VkBuffer buffer;
  VkDeviceMemory memory;
  void* mapped;
  VkDeviceSize size;
} Buffer;

static Buffer make_buffer(VkPhysicalDevice physical, VkDevice device, VkDeviceSize size) {
  Buffer b = {VK_NULL_HANDLE, VK_NULL_HANDLE, NULL, size};
  VkBufferCreateInfo bi = {VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  VkMemoryRequirements req;
  VkPhysicalDeviceMemoryProperties mp;
  VkMemoryAllocateInfo ai = {VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  uint32_t i, type = UINT32_MAX;
  bi.size = size;
  /* vidkv_device_buffer's usages: storage everywhere, transfer source for appended tokens. */
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  VK(vkCreateBuffer(device, &bi, NULL, &b.buffer));
  vkGetBufferMemoryRequirements(device, b.buffer, &req);
  vkGetPhysicalDeviceMemoryProperties(physical, &mp);
  for (i = 0; i < mp.memoryTypeCount && type == UINT32_MAX; ++i) {
    if ((req.memoryTypeBits & (1u << i)) && (mp.memoryTypes[i].propertyFlags & want) == want) type = i;
  }
  ai.allocationSize = req.size;
  ai.memoryTypeIndex = type;
  VK(vkAllocateMemory(device, &ai, NULL, &b.memory));
  VK(vkBindBufferMemory(device, b.buffer, b.memory, 0));
  VK(vkMapMemory(device, b.memory, 0, VK_WHOLE_SIZE, 0, &b.mapped));
  return b;
}

static void free_buffer(VkDevice device, Buffer* b) {
  vkDestroyBuffer(device, b->buffer, NULL);
  vkFreeMemory(device, b->memory, NULL);
}

static vidkv_device_buffer view(const Buffer* b, VkDeviceSize offset, VkDeviceSize size) {
  vidkv_device_buffer v;
  v.buffer = (uint64_t)(uintptr_t)b->buffer;
  v.offset = offset;
  v.size = size;
  return v;
}

/* fp16 bits of a float in [-4, 4] (rounded toward zero; tiny values flush to zero). */
static uint16_t to_half(float x) {
  union { float f; uint32_t u; } v;
  uint32_t sign;
  int exponent;
  v.f = x;
  sign = (v.u >> 16) & 0x8000u;
  exponent = (int)((v.u >> 23) & 0xff) - 127 + 15;
  if (exponent <= 0) return (uint16_t)sign;
  return (uint16_t)(sign | ((uint32_t)exponent << 10) | ((v.u >> 13) & 0x3ffu));
}

static double from_half(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const double magnitude = exponent == 0 ? ldexp(mantissa, -24) : ldexp(1024 + mantissa, exponent - 25);
  return (h & 0x8000) ? -magnitude : magnitude;
}

/* A deterministic pseudo-random value in [-1, 1). */
static float noise(uint32_t* state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)((*state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

int main(void) {
  const size_t row = (size_t)KV * DIM, qrow = (size_t)QH * DIM;
  VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO};
  VkInstanceCreateInfo ii = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  VkInstance instance;
  VkPhysicalDevice physical = VK_NULL_HANDLE;
  VkQueueFamilyProperties families[16];
  uint32_t count = 1, family_count = 16, family = 0;
  const float priority = 1.0f;
  VkDeviceQueueCreateInfo qi = {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  const char* extension = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME; /* vidkv binds buffers this way */
  VkDeviceCreateInfo di = {VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  VkDevice device;
  VkQueue queue;
  vidkv_external_device external;
  vidkv_context* ctx = NULL;
  vidkv_cache* cache = NULL;
  uint32_t ids[SEQS], state = 12345u, s, i, t, tokens = 0;
  Buffer prefill_k, prefill_v, step_k, step_v, q, out;
  VkCommandPoolCreateInfo pi = {VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  VkCommandPool pool;
  VkCommandBufferAllocateInfo cai = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  VkCommandBuffer cmd;
  VkCommandBufferBeginInfo begin = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  VkMemoryBarrier barrier = {VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  VkSubmitInfo submit = {VK_STRUCTURE_TYPE_SUBMIT_INFO};
  uint16_t *dk, *dv;
  double worst = 0.0;

  /* --- the engine's own instance, device and queue --- */
  app.apiVersion = VK_API_VERSION_1_2;
  ii.pApplicationInfo = &app;
  VK(vkCreateInstance(&ii, NULL, &instance));
  if (vkEnumeratePhysicalDevices(instance, &count, &physical) < 0 || count == 0) {
    fprintf(stderr, "c_engine: no Vulkan device\n");
    return 1;
  }
  vkGetPhysicalDeviceQueueFamilyProperties(physical, &family_count, families);
  while (family < family_count && !(families[family].queueFlags & VK_QUEUE_COMPUTE_BIT)) ++family;
  qi.queueFamilyIndex = family;
  qi.queueCount = 1;
  qi.pQueuePriorities = &priority;
  di.queueCreateInfoCount = 1;
  di.pQueueCreateInfos = &qi;
  di.enabledExtensionCount = 1;
  di.ppEnabledExtensionNames = &extension;
  VK(vkCreateDevice(physical, &di, NULL, &device));
  vkGetDeviceQueue(device, family, 0, &queue);

  /* --- vidkv on that device --- */
  external.get_instance_proc_addr = (void*)vkGetInstanceProcAddr;
  external.instance = instance;
  external.physical_device = physical;
  external.device = device;
  external.queue_family = family;
  external.queue = queue;
  VIDKV(vidkv_context_wrap(&external, &ctx));
  VIDKV(vidkv_cache_create(ctx, 1, KV, QH, DIM, "k1.5-v1.58", MAX_TOKENS, &cache));
  for (s = 0; s < SEQS; ++s) VIDKV(vidkv_sequence_create(cache, &ids[s]));

  /* The engine's buffers: prefill K/V, each step's K/V [SEQS][KV][DIM], the queries and outputs. */
  prefill_k = make_buffer(physical, device, PREFILL * row * 2);
  prefill_v = make_buffer(physical, device, PREFILL * row * 2);
  step_k = make_buffer(physical, device, STEPS * SEQS * row * 2);
  step_v = make_buffer(physical, device, STEPS * SEQS * row * 2);
  q = make_buffer(physical, device, SEQS * qrow * 4);
  out = make_buffer(physical, device, SEQS * qrow * 4);
  for (i = 0; i < PREFILL * row; ++i) {
    ((uint16_t*)prefill_k.mapped)[i] = to_half(noise(&state) + (i % DIM == 3 ? 3.0f : 0.0f)); /* an outlier channel */
    ((uint16_t*)prefill_v.mapped)[i] = to_half(noise(&state));
  }
  for (i = 0; i < STEPS * SEQS * row; ++i) {
    ((uint16_t*)step_k.mapped)[i] = to_half(noise(&state));
    ((uint16_t*)step_v.mapped)[i] = to_half(noise(&state));
  }
  for (i = 0; i < SEQS * qrow; ++i) ((float*)q.mapped)[i] = 0.5f * noise(&state);
  memset(out.mapped, 0xff, SEQS * qrow * 4); /* poison: every output must be written */

  /* --- one command buffer: prefills, then STEPS x (batched append, batched attention) --- */
  pi.queueFamilyIndex = family;
  VK(vkCreateCommandPool(device, &pi, NULL, &pool));
  cai.commandPool = pool;
  cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  cai.commandBufferCount = 1;
  VK(vkAllocateCommandBuffers(device, &cai, &cmd));
  begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  VK(vkBeginCommandBuffer(cmd, &begin));
  /* The host's writes, visible to vidkv's shaders and copies. */
  barrier.srcAccessMask = VK_ACCESS_HOST_WRITE_BIT;
  barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT;
  vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_HOST_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &barrier, 0, NULL,
                       0, NULL);
  for (s = 0; s < SEQS; ++s) {
    VIDKV(vidkv_record_prefill(cache, cmd, ids[s], 0, view(&prefill_k, 0, prefill_tokens[s] * row * 2),
                               view(&prefill_v, 0, prefill_tokens[s] * row * 2), 0, prefill_tokens[s], NULL));
  }
  for (t = 0; t < STEPS; ++t) {
    const VkDeviceSize at = (VkDeviceSize)t * SEQS * row * 2, bytes = SEQS * row * 2;
    VIDKV(vidkv_record_append_batch(cache, cmd, 0, ids, SEQS, view(&step_k, at, bytes), view(&step_v, at, bytes)));
    VIDKV(vidkv_record_attention_batch(cache, cmd, 0, ids, SEQS, view(&q, 0, SEQS * qrow * 4), 0.0f,
                                       view(&out, 0, SEQS * qrow * 4)));
  }
  /* vidkv's shader writes of `out`, visible to the host. */
  barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
  barrier.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
  vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &barrier, 0, NULL,
                       0, NULL);
  VK(vkEndCommandBuffer(cmd));
  submit.commandBufferCount = 1;
  submit.pCommandBuffers = &cmd;
  VIDKV(vidkv_lock_queue(ctx)); /* vidkv submits on this queue too */
  VK(vkQueueSubmit(queue, 1, &submit, VK_NULL_HANDLE));
  VK(vkQueueWaitIdle(queue));
  VIDKV(vidkv_unlock_queue(ctx));
  VIDKV(vidkv_release_retired(cache));

  /* --- the last step's attention against the CPU over what the cache holds --- */
  dk = malloc(MAX_TOKENS * row * 2);
  dv = malloc(MAX_TOKENS * row * 2);
  for (s = 0; s < SEQS; ++s) {
    uint32_t h;
    VIDKV(vidkv_dequantize(cache, ids[s], 0, dk, dv, MAX_TOKENS, &tokens));
    if (tokens != prefill_tokens[s] + STEPS) {
      fprintf(stderr, "c_engine: sequence %u holds %u tokens, %u expected\n", ids[s], tokens, prefill_tokens[s] + STEPS);
      return 1;
    }
    for (h = 0; h < QH; ++h) {
      const float* qh = (const float*)q.mapped + s * qrow + h * DIM;
      const float* got = (const float*)out.mapped + s * qrow + h * DIM;
      const uint32_t kvh = h / (QH / KV); /* query head h reads KV head h / (q_heads / kv_heads) */
      double top = -1e300, sum = 0.0, acc[DIM] = {0}, norm = 0.0, err = 0.0;
      double* score = malloc(sizeof(double) * tokens);
      uint32_t c;
      for (t = 0; t < tokens; ++t) {
        double d = 0.0;
        for (c = 0; c < DIM; ++c) d += qh[c] * from_half(dk[(t * KV + kvh) * DIM + c]);
        score[t] = d / sqrt((double)DIM);
        if (score[t] > top) top = score[t];
      }
      for (t = 0; t < tokens; ++t) {
        const double w = exp(score[t] - top);
        sum += w;
        for (c = 0; c < DIM; ++c) acc[c] += w * from_half(dv[(t * KV + kvh) * DIM + c]);
      }
      for (c = 0; c < DIM; ++c) {
        const double want = acc[c] / sum;
        norm += want * want;
        err += (got[c] - want) * (got[c] - want);
      }
      free(score);
      if (sqrt(err / norm) > worst) worst = sqrt(err / norm);
    }
  }
  printf("c_engine: %d sequences, %d batched steps in one submission; attention vs CPU over the cache's "
         "contents: relative error %.2e\n", SEQS, STEPS, worst);
  free(dk);
  free(dv);
  vidkv_cache_destroy(cache);
  vidkv_context_destroy(ctx);
  vkDestroyCommandPool(device, pool, NULL);
  free_buffer(device, &prefill_k);
  free_buffer(device, &prefill_v);
  free_buffer(device, &step_k);
  free_buffer(device, &step_v);
  free_buffer(device, &q);
  free_buffer(device, &out);
  vkDestroyDevice(device, NULL);
  vkDestroyInstance(instance, NULL);
  if (!(worst < 1e-3)) {
    fprintf(stderr, "c_engine: attention differs from the CPU's (relative error %.2e >= 1e-3)\n", worst);
    return 1;
  }
  return 0;
}
