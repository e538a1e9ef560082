/* volk's implementation, compiled into the library with its globals renamed (vk.hpp). */
#include "vidkv_volk_rename.h"
#include <volk.c>
