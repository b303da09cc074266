import sys

from edgeprune.cli.main import main

sys.exit(main())
