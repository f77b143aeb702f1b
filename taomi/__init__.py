"""Taomi: the face (command line, HTTP service, settings, demo-data generator)."""

__version__ = "0.1.0"
