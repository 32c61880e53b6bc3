"""``python -m trainer_client {train,demo,replay} ...``: the bundled GRPO trainer's commands."""

from __future__ import annotations

import sys

USAGE = """usage: python -m trainer_client {train,demo,replay} [options]

  train   GRPO with a curriculum scheduler (see `train --help`)
  demo    a few minutes of GRPO on a tiny model on the CPU, against a local scheduling
          service, with a report of the weights and rewards (see `demo --help`)
  replay  hand the scheduler calls a trainer left in its output folder (the service was
          down when it ended) to the service (see `replay --help`)
"""


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the ``train``, ``demo`` or ``replay`` command; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "train":
        from trainer_client.grpo.cli import train_main

        return train_main(rest)
    if command == "demo":
        from trainer_client.grpo.demo import demo_main

        return demo_main(rest)
    if command == "replay":
        from trainer_client.run_files import replay_main

        return replay_main(rest)
    print(f"unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
