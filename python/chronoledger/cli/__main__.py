"""``python -m chronoledger.cli``: the same as the ``chronoledger`` command."""

from chronoledger.cli import main

main()
