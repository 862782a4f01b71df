/* Compiler and CPU-feature shims for pyk._native.
 *
 * Platform differences are settled here with C macros, never with Cython DEF/IF
 * (STYLE practice 14).  PYK_X86_CRC is 1 on x86-64 with GCC/Clang: the compiler can emit
 * the SSE4.2 crc32 instruction for one function (target attribute) and the CPU can be
 * asked at run time whether it has it.  Elsewhere (aarch64 included, for now) CRC-32C
 * takes the table path.
 */
#ifndef PYK_COMPAT_H
#define PYK_COMPAT_H

#if defined(__GNUC__) || defined(__clang__)
#  define PYK_LIKELY(x)   __builtin_expect(!!(x), 1)
#  define PYK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#  define PYK_LIKELY(x)   (x)
#  define PYK_UNLIKELY(x) (x)
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#  define PYK_X86_CRC 1
#else
#  define PYK_X86_CRC 0
#endif

#endif /* PYK_COMPAT_H */
