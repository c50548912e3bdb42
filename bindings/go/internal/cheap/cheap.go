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
#else
static long long heap_in_use(void) { return -1; }
#endif
*/
import "C"

// InUse returns the bytes allocated with malloc and not yet freed (glibc's mallinfo2, all
// arenas), or ok=false where that is not available.
func InUse() (n int64, ok bool) {
	v := int64(C.heap_in_use())
	return v, v >= 0
}
