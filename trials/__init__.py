"""Protocols, the trial engine and the command line."""
