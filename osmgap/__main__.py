from osmgap.cli import main

raise SystemExit(main())
