#ifndef ROUTEGUIDE_COMMON_SANITIZERS_H_
#define ROUTEGUIDE_COMMON_SANITIZERS_H_

// ROUTEGUIDE_ASAN is 1 in code built with AddressSanitizer (gcc says so
// with __SANITIZE_ADDRESS__, clang with __has_feature), else 0: memory then
// comes from ASan's allocator, which glibc's mallinfo2 and malloc_trim do
// not see.
#if defined(__SANITIZE_ADDRESS__)
#define ROUTEGUIDE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ROUTEGUIDE_ASAN 1
#endif
#endif
#ifndef ROUTEGUIDE_ASAN
#define ROUTEGUIDE_ASAN 0
#endif

#endif  // ROUTEGUIDE_COMMON_SANITIZERS_H_
