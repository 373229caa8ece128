"""Built-in scenario files (installed as gaisnet_env.scenarios)."""
