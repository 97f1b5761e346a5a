"""The command line, ``python -m ckptwidgets COMMAND``."""
