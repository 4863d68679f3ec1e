"""HTTP routers, one module per resource. Thin: parse, call a service, shape the response."""
