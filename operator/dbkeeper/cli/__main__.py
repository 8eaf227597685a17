import sys

from dbkeeper.cli import main

sys.exit(main())
