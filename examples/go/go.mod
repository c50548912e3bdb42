module github.com/aiproxy/aiproxy/examples/go

go 1.24

require github.com/aiproxy/aiproxy/bindings/go v0.0.0

replace github.com/aiproxy/aiproxy/bindings/go => ../../bindings/go
