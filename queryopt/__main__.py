from queryopt.cli import main

raise SystemExit(main())
