"""Run the emulator standalone: ``python -m actor_pipeline_tests.replicate_emulator --port 8089``."""

import argparse
import contextlib
import signal
import threading

from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8089, help="API port (0: any free port)")
    parser.add_argument("--latency", type=float, default=5.0, help="seconds per prediction")
    parser.add_argument("--token", default="r8_emulator_dev_token", help="the API token to accept")
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ReplicateEmulator(args.port, Behaviour(latency_s=args.latency), args.token) as emulator:
        print("Replicate emulator running; point the client at it with:", flush=True)
        for name, value in emulator.env().items():
            print(f"export {name}={value}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
