"""`python -m sessionrec.stream.cli`: the `sessionrec` command without its console script."""

from sessionrec.stream.cli.main import main

main()
