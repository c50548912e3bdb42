// Package cheap reports the C heap in use, so tests can tell whether libaiproxy's allocations are
// released (e.g. by the binding's cleanups) independently of Go's own memory.
package cheap

/*
#include <stdlib.h>
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
static long long heap_in_use(void) {
	struct mallinfo2 m = mallinfo2();
	return (long long)(m.uordblks + m.hblkhd);
}
#elif defined(__GLIBC__)
#include <malloc.h>
// Before 2.33 only mallinfo exists; its int fields are enough for the test's heaps (well under
// 2 GiB).
static long long heap_in_use(void) {
	struct mallinfo m = mallinfo();
	return (long long)(unsigned)m.uordblks + (long long)(unsigned)m.hblkhd;
}
#else
static long long heap_in_use(void) { return -1; }
#endif
*/
import "C"

// InUse returns the bytes allocated with malloc and not yet freed (glibc's mallinfo2, or mallinfo
// before glibc 2.33; all arenas), or ok=false on a C library without either.
func InUse() (n int64, ok bool) {
	v := int64(C.heap_in_use())
	return v, v >= 0
}
