"""A dicomtui plugin package that is broken on purpose (see rules.py)."""
