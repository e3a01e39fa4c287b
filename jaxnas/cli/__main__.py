import sys

from jaxnas.cli.main import main

sys.exit(main())
