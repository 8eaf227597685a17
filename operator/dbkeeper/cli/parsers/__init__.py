"""The argument parsers of the ``dbkeeper`` sub-commands, one module per concern.

They import only what building the parser needs; each names its handlers with
:func:`dbkeeper.cli.common.deferred`, so ``dbkeeper --help`` and every command load no
engine they do not run.
"""
