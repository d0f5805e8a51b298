"""The frozen binary's entry point: the same ``main`` as the ``roomprobe`` console script."""

from roomprobe.cli import main

if __name__ == "__main__":
    main()
