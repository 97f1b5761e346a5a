"""``python -m ckptwidgets``: the command line, :func:`ckptwidgets.cli.main`."""
from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
