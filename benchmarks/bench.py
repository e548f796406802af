"""Per-frame speed benchmark of the tracker (thin wrapper of ``siammask-edu bench``).

    python benchmarks/bench.py --presets sharp lite --threads 1 2 --paths released fast \
        --objects 1 2 5 10 --json bench.json
"""

import sys

from siammask_edu.bench import main

if __name__ == "__main__":
    sys.exit(main())
