"""Command-line interface: one module per sub-command (``add_parser`` + ``run``)."""
