module github.com/aiproxy/aiproxy/bindings/go

go 1.24
