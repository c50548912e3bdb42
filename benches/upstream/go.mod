module aiproxy/benches/upstream

go 1.22
