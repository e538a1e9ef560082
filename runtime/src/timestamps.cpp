#include "vidkv/runtime/timestamps.hpp"

#include "vidkv/runtime/context.hpp"
#include "vk.hpp"

namespace vidkv::rt {

TimestampQueries::TimestampQueries(std::shared_ptr<Context> context, uint32_t count)
    : context_(std::move(context)), count_(count) {
  if (context_->timestamp_valid_bits() == 0) {
    throw Error(ErrorCode::missing_feature, context_->info().name + " has no timestamps on its compute queue");
  }
  VkQueryPoolCreateInfo info{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
  info.queryType = VK_QUERY_TYPE_TIMESTAMP;
  info.queryCount = count;
  check(vkCreateQueryPool(context_->device(), &info, nullptr, &pool_), "vkCreateQueryPool");
}

TimestampQueries::~TimestampQueries() { vkDestroyQueryPool(context_->device(), pool_, nullptr); }

void TimestampQueries::reset(VkCommandBuffer cmd) { vkCmdResetQueryPool(cmd, pool_, 0, count_); }

void TimestampQueries::write(VkCommandBuffer cmd, uint32_t index) {
  if (index >= count_) throw Error(ErrorCode::invalid_argument, "timestamp index out of range");
  vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pool_, index);
}

double TimestampQueries::elapsed_ms(uint32_t begin_index, uint32_t end_index) const {
  if (begin_index >= count_ || end_index >= count_) {
    throw Error(ErrorCode::invalid_argument, "timestamp index out of range");
  }
  uint64_t values[2] = {0, 0};
  check(vkGetQueryPoolResults(context_->device(), pool_, begin_index, 1, sizeof(uint64_t), &values[0],
                              sizeof(uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
        "vkGetQueryPoolResults");
  check(vkGetQueryPoolResults(context_->device(), pool_, end_index, 1, sizeof(uint64_t), &values[1],
                              sizeof(uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
        "vkGetQueryPoolResults");
  const uint32_t bits = context_->timestamp_valid_bits();
  const uint64_t mask = bits >= 64 ? ~0ull : ((1ull << bits) - 1);
  const uint64_t ticks = (values[1] - values[0]) & mask;
  return double(ticks) * context_->info().timestamp_period_ns * 1e-6;
}

}  // namespace vidkv::rt
