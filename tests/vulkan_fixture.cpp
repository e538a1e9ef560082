#include "vulkan_fixture.hpp"

namespace vidkv::test {

std::shared_ptr<rt::Context> shared_context() {
  static std::shared_ptr<rt::Context> context = [] {
    rt::ContextOptions options = rt::ContextOptions::from_environment();
    options.validation = true;  // always, whatever the environment says
    return rt::Context::create(options);
  }();
  return context;
}

void expect_no_validation_messages(const rt::Context& context, size_t since) {
  const auto messages = context.validation_messages();
  for (size_t i = since; i < messages.size(); ++i) {
    ADD_FAILURE() << "validation message: " << messages[i].text;
  }
}

void VulkanTest::SetUp() {
  ctx = shared_context();
  messages_before_ = ctx->validation_message_count();
}

void VulkanTest::TearDown() { expect_no_validation_messages(*ctx, messages_before_); }

}  // namespace vidkv::test
