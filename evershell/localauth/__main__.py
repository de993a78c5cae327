"""``python -m evershell.localauth``: run the local AuthKit-protocol server."""

from evershell.localauth.app import main

main()
