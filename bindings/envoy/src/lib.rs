// placeholder, replaced by the Envoy module
