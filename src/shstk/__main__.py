from shstk.cli import main

raise SystemExit(main())
