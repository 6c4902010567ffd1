"""`python -m restem ...` is the `restem` command."""

from restem.cli import main

raise SystemExit(main())
