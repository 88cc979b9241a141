import sys

from atlas_ls.cli import main

sys.exit(main())
