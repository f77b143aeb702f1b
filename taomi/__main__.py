"""`python -m taomi` runs the command line."""

from taomi.cli import run

run()
