"""`python -m deployments.scoring --config FILE --host H --port P` (or `-m mlstudio_scoring`)."""

from __future__ import annotations

import argparse
import logging
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlstudio_scoring", description=__doc__)
    parser.add_argument("--config", required=True, help="the service's JSON config file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log = logging.getLogger("mlstudio_scoring")

    from .app import LoadedModel, ScoringApp
    from .config import ConfigWatcher
    from .telemetry import Telemetry

    watcher = ConfigWatcher(args.config)
    config = watcher.config
    started = time.monotonic()
    loaded = LoadedModel(config.model_dir)
    log.info("model loaded in %.2f s", time.monotonic() - started)
    telemetry = Telemetry(
        config.telemetry_url,
        config.telemetry_token,
        config.telemetry_interval_s,
        config.sample_rate,
        config.sample_max_rows,
    )
    app = ScoringApp(watcher, loaded, telemetry)

    import uvicorn

    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,  # telemetry counts every request; a log line each costs latency
        server_header=False,
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
