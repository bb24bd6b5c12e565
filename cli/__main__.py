"""``python -m dicomtui.cli``: the ``dicomtui`` command."""

import sys

from dicomtui.cli.root import main

sys.exit(main())
