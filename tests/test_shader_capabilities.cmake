# ctest shader_capabilities: the portable fp16 attention shader declares subgroup arithmetic only in
# its subgroup build variant, so the plain one can be created on a device without it (a module that
# declares a capability the device lacks is invalid even where the code using it is switched off).
# Variables: GLSLANG (glslangValidator), SOURCE_DIR (shaders/).
foreach(var GLSLANG SOURCE_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "test_shader_capabilities.cmake needs -D${var}=...")
  endif()
endforeach()

function(capabilities out_var)
  execute_process(
    COMMAND "${GLSLANG}" -V --target-env vulkan1.2 -H ${ARGN} -I${SOURCE_DIR}/common
            -o "${CMAKE_CURRENT_BINARY_DIR}/shader_capabilities.spv" "${SOURCE_DIR}/attention_fp16.comp"
    RESULT_VARIABLE rc OUTPUT_VARIABLE text ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "glslang failed (${rc}) on attention_fp16.comp ${ARGN}:\n${text}\n${err}")
  endif()
  string(REGEX MATCHALL "Capability [A-Za-z0-9]+" caps "${text}")
  set(${out_var} "${caps}" PARENT_SCOPE)
endfunction()

capabilities(plain)
capabilities(subgroup -DATTENTION_SUBGROUP_ARITHMETIC)
if(plain STREQUAL "" OR NOT plain MATCHES "Capability Shader")
  message(FATAL_ERROR "no capabilities read from glslang's listing: '${plain}'")
endif()
if(plain MATCHES "GroupNonUniform")
  message(FATAL_ERROR "attention_fp16 (plain) declares subgroup capabilities: ${plain}")
endif()
if(NOT subgroup MATCHES "Capability GroupNonUniformArithmetic")
  message(FATAL_ERROR "attention_fp16.subgroup lacks GroupNonUniformArithmetic: ${subgroup}")
endif()
message(STATUS "attention_fp16: ${plain}; attention_fp16.subgroup: ${subgroup}")
