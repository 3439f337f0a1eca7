"""`python -m runstream`: the same as the `runstream` command."""

from runstream.cli import main

raise SystemExit(main())
