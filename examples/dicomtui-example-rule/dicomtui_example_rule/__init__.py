"""Example dicomtui plugin package (see rules.py)."""

__version__ = "0.2.0"
