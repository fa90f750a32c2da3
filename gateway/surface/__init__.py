"""Client APIs other than chat completions, translated to and from the one chat pipeline.

Each surface (legacy completions, the Responses API, Anthropic Messages) turns its request into a
``ChatRequest`` that runs through the same stages as any chat call (keys, budgets, caches, router,
fallback), then renders the chat answer (one body or a stream of chunks) in its own shape. Use
these modules only from ``gateway.http.surface_edge``; they never touch ASGI.
"""
