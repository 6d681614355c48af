from mockkernel.cli import main

raise SystemExit(main())
