"""``python -m roomprobe``."""

from roomprobe.cli import main

if __name__ == "__main__":
    main()
