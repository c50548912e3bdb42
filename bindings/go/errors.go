package aiproxy

import (
	"errors"
	"fmt"
)

// Code is one of the C API's AIPROXY_ERR_* codes. Each code is itself an error value, so the
// constants below work as sentinels: errors.Is(err, aiproxy.ErrConfigInvalid).
type Code int32

// The core's error codes (AIPROXY_ERR_*).
const (
	// ErrNullPointer: a required pointer was null (cannot happen through this package).
	ErrNullPointer Code = 1
	// ErrInvalidUTF8: a string argument (method, path, header name or value) was not UTF-8.
	ErrInvalidUTF8 Code = 2
	// ErrConfigJSON: the configuration is not valid JSON.
	ErrConfigJSON Code = 3
	// ErrConfigInvalid: the configuration is invalid; Error.Field names the offending path.
	ErrConfigInvalid Code = 4
	// ErrBadState: the call does not fit the exchange's state (wrong order, a second request,
	// or use after Close).
	ErrBadState Code = 5
	// ErrInternal: a panic was caught inside the library; the exchange can no longer be used.
	ErrInternal Code = 6
	// ErrInvalidArgument: an argument is out of range (e.g. an HTTP status above 65535).
	ErrInvalidArgument Code = 7
)

// ErrClosed is matched (errors.Is) by the error returned when a Config or Exchange is used after
// Close. That error is an *Error with Code ErrBadState.
var ErrClosed = errors.New("aiproxy: use of a closed handle")

func (c Code) String() string {
	switch c {
	case ErrNullPointer:
		return "null pointer"
	case ErrInvalidUTF8:
		return "invalid UTF-8"
	case ErrConfigJSON:
		return "configuration is not valid JSON"
	case ErrConfigInvalid:
		return "invalid configuration"
	case ErrBadState:
		return "bad state"
	case ErrInternal:
		return "internal error"
	case ErrInvalidArgument:
		return "invalid argument"
	}
	return fmt.Sprintf("error code %d", int32(c))
}

// Error implements error, so that a Code can be used as a sentinel.
func (c Code) Error() string { return "aiproxy: " + c.String() }

// Error is an error reported by the core: its code, message and, for configuration errors, the
// path of the offending field (e.g. "provider.azureServiceUrl"). Messages never contain API
// tokens.
type Error struct {
	Code    Code
	Message string
	Field   string

	closed bool // use after Close: also matches ErrClosed
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.Error()
	}
	return "aiproxy: " + e.Message
}

// Unwrap returns the error's Code, so errors.Is(err, ErrBadState) and errors.As(err, &code) work.
func (e *Error) Unwrap() error { return e.Code }

// Is reports whether target is ErrClosed for a use-after-Close error (the Code is matched through
// Unwrap).
func (e *Error) Is(target error) bool { return target == ErrClosed && e.closed }

func closedError(what string) error {
	return &Error{Code: ErrBadState, Message: what + " is closed", closed: true}
}
