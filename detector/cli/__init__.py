"""The ``keywatch`` command line: the composition root that builds adapters and runs the core.

``main`` holds the parser and the entry point; one module per group of commands registers its
subcommands with ``add_parsers`` and a ``handler`` each; ``wiring`` builds what they share.
"""
