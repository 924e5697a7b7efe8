"""The remote sandbox: a private Hugging Face Space running our small control server.

``server`` runs inside the Space (standard library only), ``client`` talks to it,
``manager`` creates, watches and deletes the Space. The tools live in
``agent.tools.sandbox``.
"""
