"""``python -m fieldvault_client.cli``: the staff commands alone."""

from fieldvault_client.cli import main

main()
