"""`python -m eventsource.cli`: the same as the `eventsource` console script."""

from eventsource.cli.app import main

main()
