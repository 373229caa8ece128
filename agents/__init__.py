"""Agents for gaisnet_env (installed as gaisnet_env.agents)."""
