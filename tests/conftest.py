"""Shared test set-up; its presence puts ``tests/`` on ``sys.path`` so tests can import ``helpers``."""
