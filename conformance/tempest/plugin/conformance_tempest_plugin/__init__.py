"""Tempest plugin for the embedded cloud (see plugin.py)."""
