//go:build !aiproxy_system

package aiproxy

// The library of this repository's checkout (cargo build --release), with an rpath to it.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -laiproxy -Wl,-rpath,${SRCDIR}/../../target/release
*/
import "C"
