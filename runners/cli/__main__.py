"""`python -m runners.cli`: how `hookbuild up` starts its workers."""

from runners.cli import main

main()
