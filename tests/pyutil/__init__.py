"""Shared Python test helpers for aiproxy (schema validation of gateway output)."""
