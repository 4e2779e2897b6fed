"""The Celery executor's config for the PostgreSQL + Celery deploy profile (docs/deploy.md), from settings.

``execution.executor: celery`` runs every step of every job as a task on a Celery broker; workers
started with ``dagster-celery worker start`` on any host execute them. dagster-celery is an extra
(``pip install -e ".[celery]"``): kaizen_pipeline.definitions imports it only when that executor is
chosen. Pure: no Dagster here.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from kaizen_pipeline.settings import ConfigError, Settings

BROKER_KEY = "execution.celery_broker_url"
BACKEND_KEY = "execution.celery_backend_url"
# the variables that set them (KAIZEN_<SECTION>__<KEY>): the only place a URL with a password may come from
URL_ENV = {
    BROKER_KEY: "KAIZEN_EXECUTION__CELERY_BROKER_URL",
    BACKEND_KEY: "KAIZEN_EXECUTION__CELERY_BACKEND_URL",
}


def _url_source(key: str, url: str) -> str | dict[str, str]:
    """``url`` as executor config: itself, or ``{"env": VAR}`` when it carries a password.

    A password must come from the key's environment variable, never config.yaml; the run config
    then holds the variable's name only (the UI, run storage and the workers' -y file show no secret).
    """
    try:
        password = urlsplit(url).password
    except ValueError:  # a malformed port: Celery reports it when it connects
        password = None
    if not password:
        return url
    variable = URL_ENV[key]
    if os.environ.get(variable) == url:
        return {"env": variable}
    shown = url.replace(f":{password}@", ":***@", 1)
    raise ConfigError(f"{key}: a password belongs in {variable}, not in config.yaml (got {shown})")


def celery_executor_config(settings: Settings) -> dict[str, Any]:
    """The ``celery_executor`` config of ``settings``: broker, result backend and queue.

    The same block (under ``execution: config:``) is what workers read with ``-y``: see
    deploy/celery-worker.yaml.
    """
    execution = settings.execution
    return {
        "broker": _url_source(BROKER_KEY, execution.celery_broker_url),
        "backend": _url_source(BACKEND_KEY, execution.celery_backend_url),
        # steps go to this queue; workers listen on it (-q): deployments sharing a broker stay apart
        "config_source": {"task_default_queue": execution.celery_queue},
    }
