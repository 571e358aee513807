"""`python -m mtlens ...` runs the `mtlens` command."""

from mtlens.cli import main

if __name__ == "__main__":
    main()
