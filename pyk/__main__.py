from pyk.cli import main

raise SystemExit(main())
