"""Crash, restart and recovery tests against a pyk serve process and its files on disk."""
