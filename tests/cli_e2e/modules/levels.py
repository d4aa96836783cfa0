"""Logs one line at each level, through the module log API and through Python's ``logging``."""

import logging

from spacetimedb import ReducerContext, log, reducer

logger = logging.getLogger("levels")


@reducer
def speak(ctx: ReducerContext) -> None:
    log.trace("api trace")
    log.debug("api debug")
    log.info("api info")
    log.warn("api warn")
    log.error("api error")
    logger.debug("logging debug")
    logger.info("logging info")
    logger.warning("logging warning %d", 7)
    logger.error("logging error")
