//go:build aiproxy_system

package aiproxy

// The installed library, as pkg-config describes it (aiproxy.pc from scripts/install.sh).

/*
#cgo pkg-config: aiproxy
*/
import "C"
