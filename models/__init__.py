"""Top-level models for gaisnet_env (installed as gaisnet_env.models)."""
