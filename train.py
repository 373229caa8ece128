#!/usr/bin/env python3
"""Train, evaluate and benchmark gaisnet-env agents; ``python train.py --help``.

With no arguments it runs the README's main job: train a small PPO on the default scenario
(metro) and print the benchmark table against the heuristics. See ``gaisnet_env.cli``.
"""

import sys

from gaisnet_env.cli import main

if __name__ == "__main__":
    sys.exit(main())
