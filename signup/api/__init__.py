"""The API's routers, one module per group of endpoints: parse, call one flow,
shape the answer. core/api.py mounts them; they import nothing from each other."""
