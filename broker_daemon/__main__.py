from broker_daemon.cli import main

raise SystemExit(main())
