"""Command bodies, one module per family; cli.py registers them."""
