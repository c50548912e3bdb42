package aiproxy

import (
	"net/http"
	"strings"
)

// HeadersFromHTTP converts a net/http header map to the core's form: one Header per value, names
// lower-cased.
func HeadersFromHTTP(h http.Header) []Header {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	out := make([]Header, 0, n)
	for name, vs := range h {
		lname := strings.ToLower(name)
		for _, v := range vs {
			out = append(out, Header{Name: lname, Value: v})
		}
	}
	return out
}

// ApplyHeaderEdits deletes the remove headers from h, then sets set: a name's first entry in set
// replaces h's values, later entries with the same name are added.
func ApplyHeaderEdits(h http.Header, remove []string, set []Header) {
	for _, name := range remove {
		h.Del(name)
	}
	seen := make(map[string]bool, len(set))
	for _, kv := range set {
		key := http.CanonicalHeaderKey(kv.Name)
		if seen[key] {
			h.Add(key, kv.Value)
		} else {
			seen[key] = true
			h.Set(key, kv.Value)
		}
	}
}

// ApplyTo applies the result's header edits (RemoveHeaders, then Headers) to h: the upstream
// request's headers for Forward, the reply's or callout's headers otherwise.
func (r *RequestResult) ApplyTo(h http.Header) { ApplyHeaderEdits(h, r.RemoveHeaders, r.Headers) }

// ApplyTo applies the header edits (RemoveHeaders, then Headers) to the response headers h.
func (s *ResponseStart) ApplyTo(h http.Header) { ApplyHeaderEdits(h, s.RemoveHeaders, s.Headers) }
