"""``python -m sqlml``: the command line."""

from sqlml.cli.commands import main

if __name__ == "__main__":
    main()
